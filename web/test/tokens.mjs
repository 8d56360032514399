// node web/test/tokens.mjs TOKENIZER_JSON TEXTS_JSON OUT_JSON [MAX_LENGTH STRIDE QUESTIONS_JSON]
// Token ids and code-point offsets of every text (no special tokens) with the page's tokenizer code;
// with QUESTIONS_JSON ([[question, context], ...]) also the windows of every pair.
import fs from "node:fs";
import { Tokenizer } from "@huggingface/tokenizers";
import { QATokenizer, codePointOffset } from "../src/qa.js";

const [tokenizerPath, textsPath, outPath, maxLength = "384", stride = "128", pairsPath] = process.argv.slice(2);
const json = JSON.parse(fs.readFileSync(tokenizerPath, "utf8"));
const tok = new QATokenizer(Tokenizer, json, { maxLength: Number(maxLength), stride: Number(stride) });
const cp = (text, o) => (o === null ? null : [codePointOffset(text, o[0]), codePointOffset(text, o[1])]);
const texts = JSON.parse(fs.readFileSync(textsPath, "utf8"));
const out = { encodings: texts.map((t) => { const e = tok.encode(t); return { ids: e.ids, offsets: e.offsets.map((o) => cp(t, o)) }; }) };
if (pairsPath) {
  out.windows = JSON.parse(fs.readFileSync(pairsPath, "utf8")).map(([q, c]) =>
    tok.windows(q, c).map((w) => ({ ids: w.inputIds, types: w.typeIds, offsets: w.contextOffsets.map((o) => cp(c, o)) })),
  );
}
fs.writeFileSync(outPath, JSON.stringify(out));
