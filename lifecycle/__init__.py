"""A reply's life, pure: the product's words (`words`) and the rules (`rulebook`) that the
workflow, the activities, the API and the pages all ask. Imports nothing of this project."""
