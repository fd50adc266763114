// Reads a JSON array of texts on stdin; writes, for each, what twitter-text 3.1.0 (the npm
// package X's web client uses) says: the weighted length and the links with their UTF-16
// indices. Used by tests/test_twitter_text_reference.py.
const twttr = require("twitter-text");

let input = "";
process.stdin.setEncoding("utf8");
process.stdin.on("data", (chunk) => (input += chunk));
process.stdin.on("end", () => {
  const answers = JSON.parse(input).map((text) => ({
    weightedLength: twttr.parseTweet(text).weightedLength,
    urls: twttr.extractUrlsWithIndices(text).map((u) => [u.indices[0], u.indices[1], u.url]),
  }));
  process.stdout.write(JSON.stringify(answers));
});
