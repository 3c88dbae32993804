// The payload primitives of broker RPC frames, big-endian:
//
//   u8 u16 u32 · f64 (IEEE 754: times, offsets, rates) · str = u32 byteLength, UTF-8
//   bytes = u32 byteLength, raw · opt<T> = u8 0 | u8 1, T · list<T> = u32 count, T*
//   map = u32 count, (str key, str value)* · json = str holding JSON, checked by a shape
//   tagged = u8 count, (u8 tag, u32 byteLength, value)*   — optional fields; a reader skips
//                                                           tags it does not know
//
// Tagged fields are how an optional field is added without a new version: old readers skip it,
// new readers see it absent in old frames. A reader past its end is a corrupt payload.

/** Thrown by a PayloadReader and the shapes; decoders turn it into a `corrupt` result. */
export class CorruptPayload extends Error {
  constructor(reason: string) {
    super(reason);
    this.name = 'CorruptPayload';
  }
}

export class PayloadWriter {
  private buffer: Buffer;
  private at: number;

  /** `reserveBytes` at the front are left for the caller (the frame header). */
  constructor(sizeHint = 256, reserveBytes = 0) {
    this.buffer = Buffer.allocUnsafe(Math.max(64, sizeHint + reserveBytes));
    this.at = reserveBytes;
  }

  private ensure(bytes: number): void {
    if (this.at + bytes <= this.buffer.length) return;
    const grown = Buffer.allocUnsafe(Math.max(this.buffer.length * 2, this.at + bytes));
    this.buffer.copy(grown, 0, 0, this.at);
    this.buffer = grown;
  }

  u8(value: number): this {
    this.ensure(1);
    this.buffer.writeUInt8(value, this.at);
    this.at += 1;
    return this;
  }

  u16(value: number): this {
    this.ensure(2);
    this.buffer.writeUInt16BE(value, this.at);
    this.at += 2;
    return this;
  }

  u32(value: number): this {
    this.ensure(4);
    this.buffer.writeUInt32BE(value, this.at);
    this.at += 4;
    return this;
  }

  f64(value: number): this {
    this.ensure(8);
    this.buffer.writeDoubleBE(value, this.at);
    this.at += 8;
    return this;
  }

  str(value: string): this {
    // room for the worst case (3 UTF-8 bytes a UTF-16 unit), then one native call that says
    // how many bytes it wrote, rather than measuring the string first
    this.ensure(4 + 3 * value.length);
    const bytes = this.buffer.write(value, this.at + 4, 'utf8');
    this.buffer.writeUInt32BE(bytes, this.at);
    this.at += 4 + bytes;
    return this;
  }

  bytes(value: Uint8Array): this {
    this.ensure(4 + value.length);
    this.buffer.writeUInt32BE(value.length, this.at);
    this.buffer.set(value, this.at + 4);
    this.at += 4 + value.length;
    return this;
  }

  optStr(value: string | null | undefined): this {
    if (value === null || value === undefined) return this.u8(0);
    return this.u8(1).str(value);
  }

  strList(values: readonly string[]): this {
    this.u32(values.length);
    for (const value of values) this.str(value);
    return this;
  }

  map(values: Readonly<Record<string, string>>): this {
    const entries = Object.entries(values);
    this.u32(entries.length);
    for (const [key, value] of entries) this.str(key).str(value);
    return this;
  }

  json(value: unknown): this {
    return this.str(JSON.stringify(value));
  }

  /** The optional fields present: each `[tag, write]`, absent ones as undefined. */
  tagged(fields: readonly (readonly [number, (w: PayloadWriter) => void] | undefined)[]): this {
    if (fields.length === 0) return this.u8(0);
    const present = fields.filter((field) => field !== undefined);
    this.u8(present.length);
    for (const [tag, write] of present) {
      this.u8(tag);
      const sizeAt = this.at;
      this.u32(0);
      write(this);
      this.buffer.writeUInt32BE(this.at - sizeAt - 4, sizeAt);
    }
    return this;
  }

  /** The bytes written, reserved front included; the writer must not be used after. */
  finish(): Buffer {
    return this.buffer.subarray(0, this.at);
  }
}

export class PayloadReader {
  private at: number;

  constructor(
    private readonly input: Buffer,
    start = 0,
    private readonly end = input.length,
  ) {
    this.at = start;
  }

  private take(bytes: number, what: string): number {
    if (this.end - this.at < bytes) throw new CorruptPayload(`payload ends inside ${what}`);
    const at = this.at;
    this.at += bytes;
    return at;
  }

  u8(): number {
    return this.input.readUInt8(this.take(1, 'a u8'));
  }

  u16(): number {
    return this.input.readUInt16BE(this.take(2, 'a u16'));
  }

  u32(): number {
    return this.input.readUInt32BE(this.take(4, 'a u32'));
  }

  f64(): number {
    return this.input.readDoubleBE(this.take(8, 'an f64'));
  }

  str(): string {
    const bytes = this.u32();
    const at = this.take(bytes, 'a string');
    return this.input.toString('utf8', at, at + bytes);
  }

  /** A view into the frame, not a copy. */
  bytes(): Buffer {
    const length = this.u32();
    const at = this.take(length, 'bytes');
    return this.input.subarray(at, at + length);
  }

  optStr(): string | null {
    const flag = this.u8();
    if (flag === 0) return null;
    if (flag !== 1) throw new CorruptPayload(`presence flag ${flag}`);
    return this.str();
  }

  /** A count read before `count` items of at least `minItemBytes`: checked against what is left,
   *  so a forged count cannot make a decoder allocate or loop far past the payload. */
  count(minItemBytes: number): number {
    const count = this.u32();
    if (count * minItemBytes > this.end - this.at) {
      throw new CorruptPayload(`count ${count} longer than the payload`);
    }
    return count;
  }

  strList(): string[] {
    const count = this.count(4);
    const values: string[] = [];
    for (let i = 0; i < count; i++) values.push(this.str());
    return values;
  }

  map(): Record<string, string> {
    const count = this.count(8);
    const entries: [string, string][] = [];
    for (let i = 0; i < count; i++) entries.push([this.str(), this.str()]);
    // fromEntries defines own properties: a key "__proto__" stays a key, not a prototype
    return Object.fromEntries(entries);
  }

  json(): unknown {
    const text = this.str();
    try {
      return JSON.parse(text) as unknown;
    } catch {
      throw new CorruptPayload('invalid JSON');
    }
  }

  /** Calls the reader of each known tag on exactly its bytes; unknown tags are skipped. */
  tagged(readers: Readonly<Record<number, (r: PayloadReader) => void>>): void {
    const count = this.u8();
    for (let i = 0; i < count; i++) {
      const tag = this.u8();
      const size = this.u32();
      const at = this.take(size, `tagged field ${tag}`);
      const read = readers[tag];
      if (read === undefined) continue;
      const field = new PayloadReader(this.input, at, at + size);
      read(field);
      field.expectEnd();
    }
  }

  expectEnd(): void {
    if (this.at !== this.end) throw new CorruptPayload(`${this.end - this.at} bytes left over`);
  }
}
