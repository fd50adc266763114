// Reads a JSON array of texts on stdin; writes, for each, what Bluesky's own client library
// (@atproto/api's RichText, as the app composes a post) says: its length in graphemes (what
// the 300 limit counts) and its links (UTF-8 byte start and end, URI). Used by
// tests/test_bluesky_links_reference.py.
const { RichText } = require("@atproto/api");

let input = "";
process.stdin.setEncoding("utf8");
process.stdin.on("data", (chunk) => (input += chunk));
process.stdin.on("end", () => {
  const answers = JSON.parse(input).map((text) => {
    const rich = new RichText({ text });
    rich.detectFacetsWithoutResolution();
    const links = (rich.facets || [])
      .filter((f) => f.features.some((x) => x.$type === "app.bsky.richtext.facet#link"))
      .map((f) => [f.index.byteStart, f.index.byteEnd, f.features[0].uri]);
    return { graphemes: rich.graphemeLength, links };
  });
  process.stdout.write(JSON.stringify(answers));
});
