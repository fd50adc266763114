"""One router per resource; each route declares the roles it needs."""
