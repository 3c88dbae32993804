// Receive-side tag expressions: `*` (or empty) takes everything, `A||B` takes those tags.
import type { TagFilter } from '../store/index.js';
import { WharfError } from '../errors.js';

const TAG_PATTERN = /^[^|\s][^|]*$/;

/** Parses a tag expression; undefined means "every message". */
export function parseTagFilter(expression: string): TagFilter | undefined {
  const trimmed = expression.trim();
  if (trimmed === '' || trimmed === '*') return undefined;
  const tags = new Set<string>();
  for (const part of trimmed.split('||')) {
    const tag = part.trim();
    if (tag === '*') return undefined;
    if (!TAG_PATTERN.test(tag))
      throw new WharfError('InvalidArgument', `invalid tag expression: ${expression}`);
    tags.add(tag);
  }
  return { tags };
}
