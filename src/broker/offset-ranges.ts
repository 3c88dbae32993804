// A set of queue offsets kept as sorted, disjoint, non-adjacent half-open ranges [start, end).
// Consumer progress above the committed offset is mostly contiguous runs (acked batches, filtered
// stretches), so memory follows the number of gaps, not the number of messages.

export class OffsetRanges {
  /** Flat pairs: starts at even indexes, ends at odd ones. */
  private bounds: number[] = [];

  static fromPairs(pairs: readonly (readonly [number, number])[]): OffsetRanges {
    const ranges = new OffsetRanges();
    for (const [start, end] of pairs) ranges.addRange(start, end);
    return ranges;
  }

  get rangeCount(): number {
    return this.bounds.length / 2;
  }

  /** Number of offsets in the set. */
  get size(): number {
    let size = 0;
    for (let i = 0; i < this.bounds.length; i += 2) size += this.bounds[i + 1] - this.bounds[i];
    return size;
  }

  pairs(): [number, number][] {
    const pairs: [number, number][] = [];
    for (let i = 0; i < this.bounds.length; i += 2)
      pairs.push([this.bounds[i], this.bounds[i + 1]]);
    return pairs;
  }

  /** Index of the first range whose end is > offset (binary search over ends). */
  private firstEndAbove(offset: number): number {
    let low = 0;
    let high = this.bounds.length / 2;
    while (low < high) {
      const mid = (low + high) >>> 1;
      if (this.bounds[mid * 2 + 1] > offset) high = mid;
      else low = mid + 1;
    }
    return low;
  }

  has(offset: number): boolean {
    const index = this.firstEndAbove(offset);
    return index < this.rangeCount && this.bounds[index * 2] <= offset;
  }

  add(offset: number): void {
    this.addRange(offset, offset + 1);
  }

  addRange(start: number, end: number): void {
    if (end <= start) return;
    // ranges touching [start, end) (adjacent ones included) merge into one
    const first = this.firstEndAbove(start - 1);
    let last = first;
    let newStart = start;
    let newEnd = end;
    while (last < this.rangeCount && this.bounds[last * 2] <= end) {
      newStart = Math.min(newStart, this.bounds[last * 2]);
      newEnd = Math.max(newEnd, this.bounds[last * 2 + 1]);
      last++;
    }
    this.bounds.splice(first * 2, (last - first) * 2, newStart, newEnd);
  }

  /** The lowest offset in the set, or undefined when it is empty. */
  get first(): number | undefined {
    return this.bounds[0];
  }

  delete(offset: number): void {
    this.removeRange(offset, offset + 1);
  }

  /** Removes the offsets in [start, end) (a range it cuts through is split: at most one more). */
  removeRange(start: number, end: number): void {
    // nothing to remove (the common case on the message path: no owed offsets): no allocation
    if (end <= start || this.bounds.length === 0) return;
    const first = this.firstEndAbove(start);
    const kept: number[] = [];
    let last = first;
    while (last < this.rangeCount && this.bounds[last * 2] < end) {
      const rangeStart = this.bounds[last * 2];
      const rangeEnd = this.bounds[last * 2 + 1];
      if (rangeStart < start) kept.push(rangeStart, start);
      if (rangeEnd > end) kept.push(end, rangeEnd);
      last++;
    }
    this.bounds.splice(first * 2, (last - first) * 2, ...kept);
  }

  /** Removes every offset below `offset`. */
  dropBelow(offset: number): void {
    // a range ending at `offset` goes whole: none is left empty ([offset, offset))
    const index = this.firstEndAbove(offset);
    this.bounds.splice(0, index * 2);
    if (this.bounds.length > 0 && this.bounds[0] < offset) this.bounds[0] = offset;
  }

  /** Removes every offset at or above `offset`. */
  dropFrom(offset: number): void {
    const index = this.firstEndAbove(offset);
    if (index >= this.rangeCount) return;
    if (this.bounds[index * 2] < offset) {
      this.bounds[index * 2 + 1] = offset;
      this.bounds.length = (index + 1) * 2;
    } else this.bounds.length = index * 2;
  }

  /** When `from` is in the set, the end of its range (the first offset above it not in the set);
   *  otherwise `from` itself. */
  contiguousEnd(from: number): number {
    const index = this.firstEndAbove(from);
    if (index < this.rangeCount && this.bounds[index * 2] <= from)
      return this.bounds[index * 2 + 1];
    return from;
  }

  clear(): void {
    this.bounds = [];
  }
}
