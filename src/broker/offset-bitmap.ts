// A set of queue offsets as a bitmap, one bit per offset from a floor that moves up as offsets
// below it are dropped: the scheduler's finished schedule records. They finish in due order, not
// log order, so as ranges (OffsetRanges) a timer storm would fragment into one range per record;
// here an add is O(1) and memory is span/8 bytes whatever the order.

const FULL = 0xffffffff;

export class OffsetBitmap {
  private words = new Uint32Array(0);
  /** Offset of bit 0 of words[0] (a multiple of 32). */
  private base = 0;
  /** Words in use (words[used..] are zero). */
  private used = 0;

  has(offset: number): boolean {
    const i = offset - this.base;
    if (i < 0) return false;
    const w = i >>> 5;
    return w < this.used && ((this.words[w] >>> (i & 31)) & 1) === 1;
  }

  add(offset: number): void {
    if (this.used === 0) this.base = offset - (offset & 31);
    else if (offset < this.base) this.growDown(offset - (offset & 31));
    const i = offset - this.base;
    const w = i >>> 5;
    if (w >= this.used) this.growUp(w + 1);
    this.words[w] |= 1 << (i & 31);
  }

  addAll(offsets: readonly number[]): void {
    for (const offset of offsets) this.add(offset);
  }

  /** When `from` is in the set, the first offset above it not in the set; otherwise `from`. */
  contiguousEnd(from: number): number {
    let offset = from;
    for (;;) {
      const i = offset - this.base;
      if (i < 0) return offset;
      const w = i >>> 5;
      if (w >= this.used) return offset;
      if ((i & 31) === 0 && this.words[w] === FULL) {
        offset += 32;
        continue;
      }
      if (((this.words[w] >>> (i & 31)) & 1) === 0) return offset;
      offset++;
    }
  }

  /** Removes every offset below `offset`. */
  dropBelow(offset: number): void {
    if (offset <= this.base || this.used === 0) return;
    const drop = Math.floor((offset - this.base) / 32);
    if (drop >= this.used) {
      this.words.fill(0, 0, this.used);
      this.used = 0;
      this.base = offset - (offset & 31);
      return;
    }
    if (drop > 0) {
      this.words.copyWithin(0, drop, this.used);
      this.words.fill(0, this.used - drop, this.used);
      this.used -= drop;
      this.base += drop * 32;
    }
    const below = offset - this.base; // 0..31 bits of words[0] to clear
    if (below > 0) this.words[0] &= ~((1 << below) - 1) >>> 0;
  }

  /** Offsets in the set (tests). */
  get size(): number {
    let n = 0;
    for (let w = 0; w < this.used; w++) {
      let v = this.words[w];
      while (v !== 0) {
        v &= v - 1;
        n++;
      }
    }
    return n;
  }

  private growUp(wordsNeeded: number): void {
    if (wordsNeeded > this.words.length) {
      const next = new Uint32Array(Math.max(wordsNeeded, this.words.length * 2, 64));
      next.set(this.words.subarray(0, this.used));
      this.words = next;
    }
    this.used = wordsNeeded;
  }

  private growDown(newBase: number): void {
    const shift = (this.base - newBase) / 32;
    const needed = this.used + shift;
    if (needed <= this.words.length) {
      this.words.copyWithin(shift, 0, this.used);
      this.words.fill(0, 0, shift);
    } else {
      const next = new Uint32Array(Math.max(needed, this.words.length * 2, 64));
      next.set(this.words.subarray(0, this.used), shift);
      this.words = next;
    }
    this.used = needed;
    this.base = newBase;
  }
}
