// The gateway's budget of bodies held in receive answers not yet read, shared between tenants
// as the request bodies' budget is: a tenant alone may fill half of it; past the half, one
// tenant holds no more than its share, and a tenant at its share is refused (429) rather than
// answered one message a receive, which, left unread, would fill the budget all the same.
import t from 'tap';
import { AnswerBudget } from '../../src/gateway/answer-budget.js';

const MB = 1_000_000;

t.test('past half the budget a tenant keeps to its share; the others keep theirs', async (t) => {
  const budget = new AnswerBudget(100 * MB, () => undefined, 16 * MB);
  t.equal(budget.tenantShareBytes, 25 * MB, 'a quarter, above one answer');
  t.equal(budget.available('hog'), 50 * MB, 'alone: up to the half');
  const first = budget.hold(40 * MB, 'hog');
  t.equal(budget.available('hog'), 10 * MB, 'the rest of the half');
  t.notOk(budget.overShare('hog'), 'not past the half yet');
  budget.hold(20 * MB, 'hog'); // a first message always goes: past half and past its share
  t.equal(budget.available('hog'), 0);
  t.ok(budget.overShare('hog'), 'its next receive is refused');
  t.equal(budget.available('victim'), 25 * MB, "another tenant's whole share is free");
  t.notOk(budget.overShare('victim'));
  first();
  first(); // a release is idempotent
  t.notOk(budget.overShare('hog'), 'under its share again once answers are read');
  t.equal(budget.available('hog'), 30 * MB, 'the half less what it holds (20 MB)');
});

t.test('a tenant under its share is not refused when the budget is full', async (t) => {
  const budget = new AnswerBudget(32 * MB, () => undefined, 16 * MB);
  t.equal(budget.tenantShareBytes, 16 * MB, 'at least one answer');
  budget.hold(16 * MB, 'a');
  budget.hold(16 * MB, 'b');
  t.equal(budget.available('c'), 0, 'full: only the one first message');
  t.notOk(budget.overShare('c'), 'c holds nothing: answered, not refused');
  t.ok(budget.overShare('a'), 'a holds its share past the half');
});

t.test('held bytes are reported, per tenant entries do not outlive their answers', async (t) => {
  const seen: number[] = [];
  const budget = new AnswerBudget(64 * MB, (held) => seen.push(held), 16 * MB);
  const releases = ['a', 'b', 'a'].map((tenant) => budget.hold(MB, tenant));
  for (const release of releases) release();
  t.same(seen, [MB, 2 * MB, 3 * MB, 2 * MB, MB, 0]);
  t.equal(budget.available('a'), 32 * MB);
  t.notOk(budget.overShare('a'));
});
