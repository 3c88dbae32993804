// The XML documents of the MQ HTTP protocol, parsed and built with fast-xml-parser. Requests:
// `Message` (publish: MessageBody, MessageTag?, Properties?) and `ReceiptHandles` (ack, commit,
// rollback: ReceiptHandle+). Answers: `Message` (publish), `Messages` (consume: one `Message`
// of flat text elements each), `Error` (Code, Message, RequestId, HostId) and `Errors` (one
// `Error` per failed handle: ErrorCode, ErrorMessage, ReceiptHandle). Answers carry only a
// default xmlns on the root, no attributes elsewhere, no nested fields (the SDKs crash on them).
// Input: UTF-8 and well-formedness checked first, no DOCTYPE (so no entity can be declared, let
// alone expanded; the predefined ones and character references are decoded, any other is
// refused), values kept
// verbatim (no number parsing, no trimming), namespaces and element order ignored.
import { isUtf8 } from 'node:buffer';
import { XMLBuilder, XMLParser, XMLValidator } from 'fast-xml-parser';
import { WharfError } from '../../errors.js';

/** What answers put on their root (no final slash: what the service sends, Java demands). */
export const MQ_XMLNS = 'http://mq.aliyuncs.com/doc/v1';
/** Most handles one ack request may carry (Aliyun's limit). */
export const MAX_RECEIPT_HANDLES = 16;
/** Deepest element nesting accepted in a request (the protocol's documents have 3 levels). */
const MAX_DEPTH = 8;
const CDATA_OPEN = '<![CDATA[';
const CDATA_CLOSE = ']]>';
const COMMENT_OPEN = '<!--';
const COMMENT_CLOSE = '-->';
const PI_OPEN = '<?';
const PI_CLOSE = '?>';
/**
 * Most markup (`<`) a request may hold outside CDATA: the protocol's documents hold a handful of
 * elements (an ack of 16 handles: 34 tags), and checking megabytes of tags would hold the event
 * loop for seconds (the validator takes ~0.6 s for a million elements).
 */
const MAX_MARKUP = 1024;
/** How much of the validator's own words an error repeats (it can list every open tag). */
const MAX_REASON_CHARS = 200;

const parser = new XMLParser({
  ignoreAttributes: true,
  removeNSPrefix: true,
  parseTagValue: false,
  trimValues: false,
  ignoreDeclaration: true,
  ignorePiTags: true,
  processEntities: true,
  // also decodes character references (Go escapes tab, LF and CR as &#x9; &#xA; &#xD;); named
  // HTML entities would be decoded too, but parseDocument refuses them first (no DOCTYPE, so
  // only XML's five exist)
  htmlEntities: true,
  maxNestedTags: MAX_DEPTH,
  isArray: (name) => name === 'ReceiptHandle',
});

const builder = new XMLBuilder({
  ignoreAttributes: false,
  attributeNamePrefix: '@_',
  format: false,
  suppressEmptyNode: false,
  processEntities: true,
});

function malformed(message: string, cause?: unknown): WharfError {
  return new WharfError('InvalidArgument', message, {
    ...(cause === undefined ? {} : { cause }),
    details: { mqCode: 'MalformedXML' },
  });
}

/** The root element's children of a well-formed document whose root is `root`. */
function parseDocument(raw: Buffer, root: string): Record<string, unknown> {
  // decoding would replace invalid bytes with U+FFFD: another body than the one sent
  if (!isUtf8(raw)) throw malformed('the body is not valid UTF-8');
  const text = raw.toString('utf8');
  const outsideCdata = withoutCdata(text);
  if (outsideCdata === null) throw malformed('a CDATA section is not closed');
  // outside CDATA only: the Node SDK sends a body in CDATA, and an HTML page's `<!DOCTYPE html>`
  // is text there, not a declaration
  if (/<!DOCTYPE/i.test(outsideCdata)) throw malformed('a DOCTYPE is not accepted');
  if (countOf(outsideCdata, '<', MAX_MARKUP + 1) > MAX_MARKUP) {
    throw malformed(`more than ${MAX_MARKUP} tags: not a document of this protocol`);
  }
  const valid = XMLValidator.validate(text);
  if (valid !== true) {
    const reason = valid.err.msg;
    const shown =
      reason.length > MAX_REASON_CHARS ? `${reason.slice(0, MAX_REASON_CHARS)}…` : reason;
    throw malformed(`the body is not well-formed XML: ${shown}`);
  }
  // XML forbids `]]>` in text outside CDATA, which the validator lets through; it is what the
  // Node SDK sends for a body containing `]]>` (its CDATA ends early), and a lenient parse would
  // store another body than the one meant
  if (outsideCdata.includes(']]>')) {
    throw malformed('`]]>` outside a CDATA section (a body containing `]]>` needs escaping)');
  }
  // XML 1.0 has no control characters but tab, LF and CR, written or referenced (a reference is
  // one outside CDATA): the parser would drop a reference to one silently, storing another body
  // than the one sent
  if (FORBIDDEN_CHAR.test(text) || hasForbiddenCharRef(outsideCdata)) {
    throw malformed('a character XML 1.0 does not allow (a control character or its reference)');
  }
  // without a DTD XML defines five entities: the parser would decode HTML's (&nbsp;) and keep
  // an unknown one as text, storing another body than the one sent
  if (UNDEFINED_ENTITY.test(outsideCdata)) {
    throw malformed('an entity XML does not define (only &lt; &gt; &amp; &quot; &apos; &#…;)');
  }
  let doc: unknown;
  try {
    doc = parser.parse(text);
  } catch (cause) {
    throw malformed('the body is not well-formed XML', cause);
  }
  const top = isRecord(doc) ? doc[root] : undefined;
  if (top === undefined) throw malformed(`the root element must be ${root}`);
  // An empty root parses to '' (no children).
  return isRecord(top) ? top : {};
}

/**
 * `text` with its CDATA sections taken out, in one pass (a lazy regex rescans to the end from
 * every unclosed opening: quadratic in the body); null when a section is not closed. A
 * `<![CDATA[` inside a comment or a processing instruction opens nothing (they are kept, as
 * written): else a comment holding one would hide what follows it — a DOCTYPE — from the checks.
 */
function withoutCdata(text: string): string | null {
  let cdata = text.indexOf(CDATA_OPEN);
  if (cdata === -1) return text;
  let comment = text.indexOf(COMMENT_OPEN);
  let pi = text.indexOf(PI_OPEN);
  const parts: string[] = [];
  let from = 0;
  while (cdata !== -1) {
    const other = [comment, pi].filter((at) => at !== -1 && at < cdata);
    if (other.length > 0) {
      // a comment or PI before the next CDATA opening: skipped whole, whatever it holds
      const at = Math.min(...other);
      const closing = at === comment ? COMMENT_CLOSE : PI_CLOSE;
      const end = text.indexOf(closing, at + 2);
      if (end === -1) break; // not closed: the validator refuses the document
      const past = end + closing.length;
      if (cdata < past) cdata = text.indexOf(CDATA_OPEN, past);
      if (comment < past) comment = text.indexOf(COMMENT_OPEN, past);
      if (pi < past) pi = text.indexOf(PI_OPEN, past);
      continue;
    }
    const close = text.indexOf(CDATA_CLOSE, cdata + CDATA_OPEN.length);
    if (close === -1) return null;
    parts.push(text.slice(from, cdata));
    from = close + CDATA_CLOSE.length;
    cdata = text.indexOf(CDATA_OPEN, from);
    if (comment !== -1 && comment < from) comment = text.indexOf(COMMENT_OPEN, from);
    if (pi !== -1 && pi < from) pi = text.indexOf(PI_OPEN, from);
  }
  parts.push(text.slice(from));
  return parts.join('');
}

/** Occurrences of `char` in `text`, counted up to `limit`. */
function countOf(text: string, char: string, limit: number): number {
  let count = 0;
  for (let at = text.indexOf(char); at !== -1 && count < limit; at = text.indexOf(char, at + 1)) {
    count++;
  }
  return count;
}

/** Characters outside XML 1.0's Char production (lone surrogates cannot come from UTF-8). */
const FORBIDDEN_CHAR = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]/;
const CHAR_REF = /&#(?:x([0-9a-fA-F]+)|([0-9]+));/g;
/** An `&` that does not start one of XML's predefined entities or a character reference. */
const UNDEFINED_ENTITY = /&(?!(?:lt|gt|amp|quot|apos|#[0-9]+|#x[0-9a-fA-F]+);)/;

/** Whether a character reference names a code point XML 1.0 does not allow. */
function hasForbiddenCharRef(text: string): boolean {
  if (!text.includes('&#')) return false;
  for (const [, hex, decimal] of text.matchAll(CHAR_REF)) {
    const code = hex !== undefined ? parseInt(hex, 16) : Number(decimal);
    const allowed =
      code === 0x9 ||
      code === 0xa ||
      code === 0xd ||
      (code >= 0x20 && code <= 0xd7ff) ||
      (code >= 0xe000 && code <= 0xfffd) ||
      (code >= 0x10000 && code <= 0x10ffff);
    if (!allowed) return true;
  }
  return false;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A child that must be text (absent: undefined); repeated or nested is refused. */
function textOf(parent: Record<string, unknown>, name: string): string | undefined {
  const value = parent[name];
  if (value === undefined) return undefined;
  if (typeof value !== 'string') {
    throw new WharfError('InvalidArgument', `${name} must be text, once`, {
      details: { mqCode: 'InvalidArgument' },
    });
  }
  return value;
}

export interface PublishRequest {
  body: string;
  tag?: string;
  properties?: string;
}

export function decodePublishRequest(raw: Buffer): PublishRequest {
  const message = parseDocument(raw, 'Message');
  const body = textOf(message, 'MessageBody');
  if (body === undefined) throw new WharfError('InvalidArgument', 'MessageBody is required');
  const tag = textOf(message, 'MessageTag');
  const properties = textOf(message, 'Properties');
  return {
    body,
    ...(tag === undefined || tag === '' ? {} : { tag }),
    ...(properties === undefined || properties === '' ? {} : { properties }),
  };
}

/** The handles of an ack / commit / rollback body, in order (1..MAX_RECEIPT_HANDLES). */
export function decodeReceiptHandles(raw: Buffer): string[] {
  const list = parseDocument(raw, 'ReceiptHandles').ReceiptHandle;
  const handles = Array.isArray(list) ? (list as unknown[]) : [];
  if (handles.length === 0) throw new WharfError('InvalidArgument', 'no ReceiptHandle given');
  if (handles.length > MAX_RECEIPT_HANDLES) {
    throw new WharfError('InvalidArgument', `at most ${MAX_RECEIPT_HANDLES} receipt handles`);
  }
  return handles.map((h) => {
    if (typeof h !== 'string' || h.trim() === '') {
      throw new WharfError('InvalidArgument', 'a ReceiptHandle must be non-empty text');
    }
    return h.trim();
  });
}

// Characters XML 1.0 cannot carry (C0 controls but tab/LF/CR, lone surrogates, U+FFFE/U+FFFF):
// sent as U+FFFD, as invalid UTF-8 already is by Buffer#toString.
const NOT_XML_CHAR = /[^\t\n\r\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/gu;

/** Text that XML 1.0 can carry (what cannot becomes U+FFFD). */
export function xmlText(text: string): string {
  return text.replace(NOT_XML_CHAR, '\uFFFD');
}

function document(root: string, children: Record<string, unknown>): string {
  const built = builder.build({ [root]: { '@_xmlns': MQ_XMLNS, ...children } });
  // a raw CR reaches a conforming parser (the Java and Go SDKs') as a line feed, and the body
  // would not match its MD5: written as a reference (the answer's markup has no CR of its own)
  const text = built.includes('\r') ? built.replace(/\r/g, '&#xD;') : built;
  return '<?xml version="1.0" encoding="UTF-8"?>' + text;
}

/** Only the fields that are set, as text, in the given order. */
function fields(entries: [string, string | number | undefined][]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of entries) {
    if (value !== undefined) out[name] = xmlText(String(value));
  }
  return out;
}

export interface PublishAnswer {
  messageId: string;
  bodyMd5: string;
  /** A half message's handle (commit / rollback). */
  receiptHandle?: string;
}

export function encodePublishAnswer(answer: PublishAnswer): string {
  return document(
    'Message',
    fields([
      ['MessageId', answer.messageId],
      ['MessageBodyMD5', answer.bodyMd5],
      ['ReceiptHandle', answer.receiptHandle],
    ]),
  );
}

/** One consumed message, as the protocol shows it (times in epoch ms). */
export interface MqMessage {
  messageId: string;
  receiptHandle: string;
  body: string;
  bodyMd5: string;
  publishTime: number;
  firstConsumeTime: number;
  nextConsumeTime: number;
  consumedTimes: number;
  tag?: string;
  properties?: string;
}

/** A consume answer; never called with no message (that answer is the MessageNotExist error). */
export function encodeMessages(messages: readonly MqMessage[]): string {
  if (messages.length === 0) throw new Error('an empty Messages answer crashes the SDKs');
  return document('Messages', {
    Message: messages.map((m) =>
      fields([
        ['MessageId', m.messageId],
        ['ReceiptHandle', m.receiptHandle],
        ['MessageBody', m.body],
        ['MessageBodyMD5', m.bodyMd5],
        ['PublishTime', m.publishTime],
        ['FirstConsumeTime', m.firstConsumeTime],
        ['NextConsumeTime', m.nextConsumeTime],
        ['ConsumedTimes', m.consumedTimes],
        ['MessageTag', m.tag],
        ['Properties', m.properties],
      ]),
    ),
  });
}

export interface MqErrorAnswer {
  code: string;
  message: string;
  requestId: string;
  hostId: string;
}

export function encodeError(error: MqErrorAnswer): string {
  return document(
    'Error',
    fields([
      ['Code', error.code],
      ['Message', error.message],
      ['RequestId', error.requestId],
      ['HostId', error.hostId],
    ]),
  );
}

export interface HandleError {
  code: string;
  message: string;
  receiptHandle: string;
}

/** The answer of an ack / commit / rollback where some handles failed (only those listed). */
export function encodeHandleErrors(errors: readonly HandleError[]): string {
  return document('Errors', {
    Error: errors.map((e) =>
      fields([
        ['ErrorCode', e.code],
        ['ErrorMessage', e.message],
        ['ReceiptHandle', e.receiptHandle],
      ]),
    ),
  });
}
