// edgeadapt in the browser: the same tokenisation, windows and span decoding as edgeadapt.runtime
// (features.py, spans.py). Pure logic, no DOM and no onnxruntime: runs in the page and in node (tests).
//
// Token ids come from tokenizers.js (@huggingface/tokenizers). Two things it does not give are added here:
// - XLM-R's `Precompiled` normaliser: tokenizers.js approximates it with NFKC; this file reads the
//   tokenizer.json's precompiled charsmap (sentencepiece's double-array trie) and applies it per grapheme,
//   as `tokenizers` (spm_precompiled) does, so the ids match the Python tokenizer.
// - character offsets of every token in the original text (tokenizers.js returns ids and token strings only):
//   each token's text is matched against the text normalised grapheme by grapheme, which keeps the map back
//   to the original characters.

/** Sentencepiece's precompiled charsmap: a darts double-array trie over UTF-8 bytes + normalised strings. */
export class CharsMap {
  constructor(base64) {
    const bytes = base64ToBytes(base64);
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const trieSize = view.getUint32(0, true);
    this.array = new Uint32Array(trieSize / 4);
    for (let i = 0; i < this.array.length; i++) this.array[i] = view.getUint32(4 + 4 * i, true);
    this.normalized = bytes.subarray(4 + trieSize);
    this.encoder = new TextEncoder();
    this.decoder = new TextDecoder();
    this.graphemes = new Intl.Segmenter(undefined, { granularity: "grapheme" });
    this.cache = new Map();
  }

  /** Values of the trie keys that are prefixes of `key` (spm_precompiled's common_prefix_search). */
  commonPrefixSearch(key) {
    const array = this.array;
    const results = [];
    let nodePos = 0;
    let unit = array[nodePos];
    nodePos ^= offsetOf(unit);
    for (const c of key) {
      if (c === 0) break;
      nodePos ^= c;
      unit = array[nodePos];
      if (unit === undefined || (unit & 0x800000ff) >>> 0 !== c) return results;
      nodePos ^= offsetOf(unit);
      if ((unit >>> 8) & 1) results.push(array[nodePos] & 0x7fffffff);
    }
    return results;
  }

  /** The replacement of `chunk`, or null when the charsmap leaves it alone. */
  transform(chunk) {
    const results = this.commonPrefixSearch(this.encoder.encode(chunk));
    if (results.length === 0) return null;
    const start = results[0];
    let end = start;
    while (end < this.normalized.length && this.normalized[end] !== 0) end++;
    return this.decoder.decode(this.normalized.subarray(start, end));
  }

  /** [normalised text, original start, original end] per grapheme (UTF-16 offsets into `text`). */
  pieces(text) {
    const out = [];
    for (const { segment, index } of this.graphemes.segment(text)) {
      for (const [norm, from, to] of this.segmentPieces(segment)) out.push([norm, index + from, index + to]);
    }
    return out;
  }

  /** [normalised, start, end] within one grapheme (memoised: graphemes repeat). */
  segmentPieces(segment) {
    let pieces = this.cache.get(segment);
    if (pieces !== undefined) return pieces;
    pieces = [];
    const whole = this.encoder.encode(segment).length < 6 ? this.transform(segment) : null;
    if (whole !== null) {
      pieces.push([whole, 0, segment.length]);
    } else {
      let at = 0;
      for (const ch of segment) {
        const norm = this.transform(ch);
        pieces.push([norm === null ? ch : norm, at, at + ch.length]);
        at += ch.length;
      }
    }
    if (this.cache.size < 100000) this.cache.set(segment, pieces);
    return pieces;
  }

  normalize(text) {
    return this.pieces(text)
      .map((p) => p[0])
      .join("");
  }
}

function offsetOf(unit) {
  return (unit >>> 10) << ((unit & (1 << 9)) >>> 6);
}

function base64ToBytes(text) {
  if (typeof atob === "function") {
    const raw = atob(text);
    const bytes = new Uint8Array(raw.length);
    for (let i = 0; i < raw.length; i++) bytes[i] = raw.charCodeAt(i);
    return bytes;
  }
  return new Uint8Array(Buffer.from(text, "base64"));
}

function findPrecompiled(normalizer) {
  if (!normalizer) return [];
  if (normalizer.constructor && normalizer.config && normalizer.config.type === "Precompiled") return [normalizer];
  return (normalizer.normalizers || []).flatMap(findPrecompiled);
}

/** Special tokens and type ids of a pair (question, context) from the tokenizer.json's post-processor. */
export function pairTemplate(json, tokenToId) {
  const post = json.post_processor;
  const special = (token, typeId) => ({ special: tokenToId(token), typeId });
  if (!post) return { items: [{ seq: "A", typeId: 0 }, { seq: "B", typeId: 0 }] };
  if (post.type === "TemplateProcessing") {
    const items = post.pair.map((item) => {
      if (item.Sequence) return { seq: item.Sequence.id, typeId: item.Sequence.type_id };
      const entry = post.special_tokens[item.SpecialToken.id];
      return { specials: entry.ids, typeId: item.SpecialToken.type_id };
    });
    return { items };
  }
  if (post.type === "RobertaProcessing") {
    const [cls, sep] = [post.cls[0], post.sep[0]];
    return {
      items: [special(cls, 0), { seq: "A", typeId: 0 }, special(sep, 0), special(sep, 0), { seq: "B", typeId: 0 }, special(sep, 0)],
    };
  }
  if (post.type === "BertProcessing") {
    const [cls, sep] = [post.cls[0], post.sep[0]];
    return { items: [special(cls, 0), { seq: "A", typeId: 0 }, special(sep, 0), { seq: "B", typeId: 1 }, special(sep, 1)] };
  }
  throw new Error(`post-processor ${post.type} is not supported in the browser`);
}

export const MAX_QUESTION_TOKENS = 64;
export const MAX_ANSWER_TOKENS = 30;

/** The bundle's tokenizer (tokenizers.js) with character offsets and edgeadapt's windows. */
export class QATokenizer {
  constructor(TokenizerClass, json, { maxLength, stride }) {
    this.tokenizer = new TokenizerClass(json, {});
    this.maxLength = maxLength;
    this.stride = stride;
    const precompiled = findPrecompiled(this.tokenizer.normalizer);
    this.charsmap = null;
    for (const normalizer of precompiled) {
      const charsmap = new CharsMap(normalizer.config.precompiled_charsmap);
      normalizer.normalize = (text) => charsmap.normalize(text);
      this.charsmap = charsmap;
    }
    const model = json.model || {};
    this.prefix = model.type === "WordPiece" ? model.continuing_subword_prefix || "##" : null;
    const pre = [json.pre_tokenizer, ...((json.pre_tokenizer && json.pre_tokenizer.pretokenizers) || [])];
    const metaspace = pre.find((p) => p && p.type === "Metaspace");
    this.metaspace = metaspace ? metaspace.replacement || "\u2581" : null;
    const unk = model.unk_token ?? (model.unk_id != null && model.vocab ? model.vocab[model.unk_id][0] : null);
    this.unkId = unk == null ? -1 : this.tokenToId(unk);
    this.unkToken = unk == null ? "\u0000" : unk;
    this.template = pairTemplate(json, (token) => this.tokenToId(token));
    this.added = this.template.items.reduce((n, item) => n + (item.specials ? item.specials.length : 0), 0);
    const pad = ["<pad>", "[PAD]"].map((t) => this.tokenizer.token_to_id(t)).find((id) => id !== undefined);
    this.padId = pad === undefined ? 0 : pad;
  }

  tokenToId(token) {
    const id = this.tokenizer.token_to_id(token);
    if (id === undefined) throw new Error(`token ${token} is not in the vocabulary`);
    return id;
  }

  /** Normalised characters of `text`, each with the original [start, end) of the grapheme it came from. */
  normalizedChars(text) {
    const pieces = this.charsmap ? this.charsmap.pieces(text) : this.genericPieces(text);
    const chars = [];
    let removed = null; // characters the normaliser drops (zero-width) belong to the next character, as in tokenizers
    for (const [norm, start, end] of pieces) {
      if (norm.length === 0 && removed === null) removed = start;
      const normChars = Array.from(norm);
      const original = Array.from(text.slice(start, end));
      let at = start;
      for (let k = 0; k < normChars.length; k++) {
        // as many characters out as in (case, accents kept): each keeps its own span, as tokens may split a grapheme
        const [from, to] = normChars.length === original.length ? [at, at + original[k].length] : [start, end];
        chars.push({ ch: normChars[k], start: removed ?? from, end: to });
        removed = null;
        if (normChars.length === original.length) at += original[k].length;
      }
    }
    return chars;
  }

  genericPieces(text) {
    const normalizer = this.tokenizer.normalizer;
    const out = [];
    for (const { segment, index } of new Intl.Segmenter(undefined, { granularity: "grapheme" }).segment(text)) {
      out.push([normalizer ? normalizer(segment) : segment, index, index + segment.length]);
    }
    return out;
  }

  /** Token ids and [start, end) offsets (UTF-16, into `text`) without special tokens. */
  encode(text) {
    const { ids, tokens } = this.tokenizer.encode(text, { add_special_tokens: false });
    const chars = this.normalizedChars(text);
    const isSpace = (c) => c === " " || c === this.metaspace || /\s/u.test(c);
    const contents = tokens.map((token, i) => {
      if (ids[i] === this.unkId) return null;
      let content = token;
      if (this.prefix && content.startsWith(this.prefix)) content = content.slice(this.prefix.length);
      if (this.metaspace) content = content.split(this.metaspace).join(" ");
      return Array.from(content.trim().length ? content.replace(/^\s+/u, "") : "");
    });
    const matchAt = (content, at) => {
      for (let k = 0; k < content.length; k++) {
        if (at + k >= chars.length || chars[at + k].ch !== content[k]) return false;
      }
      return true;
    };
    // a token's text is looked for close to where the previous one ended (never far ahead: that would desync)
    const find = (content, from) => {
      const last = Math.min(chars.length - content.length, from + content.length + 16);
      for (let at = from; at <= last; at++) if (matchAt(content, at)) return at;
      return -1;
    };
    const isPunct = (c) => /[\p{P}\u0021-\u002F\u003A-\u0040\u005B-\u0060\u007B-\u007E]/u.test(c);
    const offsets = [];
    let cursor = 0;
    for (let i = 0; i < tokens.length; i++) {
      const wsStart = cursor;
      while (cursor < chars.length && isSpace(chars[cursor].ch)) cursor++;
      const content = contents[i];
      if (content === null && cursor < chars.length && text.startsWith(this.unkToken, chars[cursor].start)) {
        // the unknown token written out in the text (an added token, matched before normalisation)
        const from = cursor;
        const stop = chars[cursor].start + this.unkToken.length;
        while (cursor < chars.length && chars[cursor].start < stop) cursor++;
        offsets.push([chars[from].start, stop]);
        continue;
      }
      if (content === null && this.prefix !== null) {
        // WordPiece: an unknown token is a whole word (BERT's pre-tokenizer: whitespace or one punctuation mark)
        let stop = cursor + 1;
        if (cursor < chars.length && !isPunct(chars[cursor].ch)) {
          while (stop < chars.length && !isSpace(chars[stop].ch) && !isPunct(chars[stop].ch)) stop++;
        }
        stop = Math.min(stop, chars.length);
        offsets.push(span(chars, cursor, stop, text.length));
        cursor = stop;
        continue;
      }
      if (content === null) {
        // unknown pieces (unigram): up to where the next known token's text starts, else to the end of the word
        let stop = -1;
        for (let j = i + 1; j < tokens.length && stop < 0; j++) {
          if (contents[j] && contents[j].length) stop = find(contents[j], cursor + 1);
        }
        if (stop < 0) {
          stop = cursor + 1;
          while (stop < chars.length && !isSpace(chars[stop].ch)) stop++;
        }
        while (stop > cursor + 1 && isSpace(chars[stop - 1].ch)) stop--;
        offsets.push(span(chars, cursor, Math.min(stop, chars.length), text.length));
        cursor = Math.min(stop, chars.length);
        continue;
      }
      if (content.length === 0) {
        // a lone metaspace: the whitespace it stands for, or (prepended at the start) the next character
        offsets.push(span(chars, wsStart, wsStart < cursor ? cursor : cursor + 1, text.length));
        continue;
      }
      let at = matchAt(content, cursor) ? cursor : find(content, cursor);
      if (at < 0) {
        offsets.push(span(chars, cursor, cursor, text.length));
        continue;
      }
      // a token that starts with the metaspace covers the (last) space before its text, as in tokenizers
      const lead = at === cursor && this.metaspace && tokens[i].startsWith(this.metaspace) && wsStart < cursor ? 1 : 0;
      offsets.push(span(chars, at - lead, at + content.length, text.length));
      cursor = at + content.length;
    }
    return { ids, offsets };
  }

  /** The most question tokens a window keeps (features.question_limit): 64, fewer in very short windows. */
  questionLimit() {
    return Math.max(1, Math.min(MAX_QUESTION_TOKENS, this.maxLength - this.added - this.stride - 1));
  }

  /** The model input windows of one question over one context, as `encode_windows` cuts them. */
  windows(question, context) {
    question = question.trim();
    if (!question) throw new Error("the question is empty: ask something");
    let q = this.encode(question);
    const limit = this.questionLimit();
    if (q.ids.length > limit) {
      question = question.slice(0, q.offsets[limit - 1][1]);
      q = this.encode(question);
    }
    const c = this.encode(context);
    let parts = [[0, c.ids.length]];
    const total = q.ids.length + c.ids.length + this.added;
    if (total > this.maxLength) {
      const toRemove = total - this.maxLength;
      if (c.ids.length <= toRemove) throw new Error("the question leaves no room for the context in a window");
      const room = c.ids.length - toRemove;
      if (this.stride >= room) throw new Error(`stride ${this.stride} must be less than ${room}`);
      parts = [];
      for (let start = 0; ; start += room - this.stride) {
        const stop = Math.min(start + room, c.ids.length);
        parts.push([start, stop]);
        if (stop === c.ids.length) break;
      }
    }
    // tokenizers quirk, mirrored: the template's type ids reach the first window only; in the overflowing ones the
    // context keeps the type id it was encoded with as the pair's second sequence (1)
    return parts.map(([start, stop], part) => {
      const inputIds = [];
      const typeIds = [];
      const contextOffsets = [];
      for (const item of this.template.items) {
        if (item.specials) {
          for (const id of item.specials) {
            inputIds.push(id);
            typeIds.push(item.typeId);
            contextOffsets.push(null);
          }
        } else if (item.seq === "A") {
          for (const id of q.ids) {
            inputIds.push(id);
            typeIds.push(item.typeId);
            contextOffsets.push(null);
          }
        } else {
          for (let k = start; k < stop; k++) {
            inputIds.push(c.ids[k]);
            typeIds.push(part === 0 ? item.typeId : 1);
            contextOffsets.push(c.offsets[k]);
          }
        }
      }
      return { inputIds, typeIds, contextOffsets };
    });
  }
}

function span(chars, from, to, textLength) {
  if (from >= chars.length) return [textLength, textLength];
  if (to <= from) return [chars[from].start, chars[from].start];
  return [chars[from].start, chars[to - 1].end];
}

/** Windows -> padded int64 rows (BigInt64Array) of input_ids, attention_mask, token_type_ids. */
export function padBatch(windows, padId) {
  const length = Math.max(...windows.map((w) => w.inputIds.length));
  const ids = new BigInt64Array(windows.length * length).fill(BigInt(padId));
  const mask = new BigInt64Array(windows.length * length);
  const types = new BigInt64Array(windows.length * length);
  windows.forEach((w, row) => {
    for (let k = 0; k < w.inputIds.length; k++) {
      ids[row * length + k] = BigInt(w.inputIds[k]);
      mask[row * length + k] = 1n;
      types[row * length + k] = BigInt(w.typeIds[k]);
    }
  });
  return { length, ids, mask, types };
}

function logSoftmax(values) {
  let max = -Infinity;
  for (const v of values) if (v > max) max = v;
  let sum = 0;
  for (const v of values) sum += Math.exp(v - max);
  const log = Math.log(sum);
  return values.map((v) => v - max - log);
}

/** (log score, first token, last token) of the best span of one window, or null (spans.best_span_in_window). */
export function bestSpanInWindow(window, starts, ends, maxAnswerTokens = MAX_ANSWER_TOKENS) {
  const idx = [];
  window.contextOffsets.forEach((o, k) => {
    if (o !== null) idx.push(k);
  });
  if (idx.length === 0) return null;
  const startLp = logSoftmax(idx.map((k) => starts[k]));
  const endLp = logSoftmax(idx.map((k) => ends[k]));
  let best = -Infinity;
  let bi = -1;
  let bj = -1;
  for (let i = 0; i < idx.length; i++) {
    for (let j = 0; j < idx.length; j++) {
      if (idx[j] < idx[i] || idx[j] - idx[i] >= maxAnswerTokens) continue;
      const score = startLp[i] + endLp[j];
      if (score > best) {
        best = score;
        bi = i;
        bj = j;
      }
    }
  }
  if (bi < 0 || !Number.isFinite(best)) return null;
  return [best, idx[bi], idx[bj]];
}

/** The best span over all windows (spans.best_span): {text, start, end, score}; start/end index `context`. */
export function bestSpan(context, windows, startLogits, endLogits, maxAnswerTokens = MAX_ANSWER_TOKENS) {
  let best = null;
  windows.forEach((window, w) => {
    const found = bestSpanInWindow(window, startLogits[w], endLogits[w], maxAnswerTokens);
    if (found && (best === null || found[0] > best[0])) best = [found[0], window, found[1], found[2]];
  });
  if (best === null) return { text: "", start: 0, end: 0, score: 0 };
  const [logScore, window, first, last] = best;
  let start = window.contextOffsets[first][0];
  let end = window.contextOffsets[last][1];
  while (start < end && /\s/u.test(context[start])) start++;
  while (end > start && /\s/u.test(context[end - 1])) end--;
  return { text: context.slice(start, end), start, end, score: Math.exp(logScore) };
}

/** A UTF-16 offset into `text` as a code-point offset (Python's str indices). */
export function codePointOffset(text, index) {
  let n = 0;
  for (let k = 0; k < index; k++) {
    const c = text.charCodeAt(k);
    if (c < 0xd800 || c > 0xdbff) n++;
  }
  return n;
}
