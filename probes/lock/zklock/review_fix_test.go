package zklock_test

// Regression tests for the fixes of the adversarial review (issue 12), beside the
// reviewer's own TestReviewAttack* tests.

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/dsctl/dsctl/probes/errs"
	"github.com/dsctl/dsctl/probes/lock"
	"github.com/dsctl/dsctl/probes/lock/locktest"
)

// Finding 3: inspect of a semaphore lists every lease node (holding) in its queue, and
// break of one lease by its token deletes exactly that node; without a token it is
// refused with nothing deleted (never a panic).
func TestReviewFixSemaphoreInspectQueueAndBreak(t *testing.T) {
	tg := reviewServer(t)
	ctx := context.Background()
	name := locktest.Name(t, "semq")
	a, b, op := newLocker(t, tg), newLocker(t, tg), newLocker(t, tg)
	held := takePermits(t, name, 2, a, b)
	la, lb := held[0], held[1]
	info, err := op.Inspect(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	if len(info.Queue) != 2 || !info.Queue[0].Holding || !info.Queue[1].Holding || info.Queue[0].Token != la.Token || info.Queue[1].Token != lb.Token {
		t.Fatalf("inspect of a 2-lease semaphore: queue %+v, want both leases holding, oldest first", info.Queue)
	}
	if _, err := op.Break(ctx, name, lock.BreakOptions{Reason: "test", By: "test"}); errs.KindOf(err) != errs.KindUsage {
		t.Fatalf("break of a semaphore without a token: %v, want a usage error", err)
	}
	if n := leaseNodes(t, op, name); len(n) != 2 {
		t.Fatalf("a refused break deleted lease nodes: %v", n)
	}
	if _, err := op.Break(ctx, name, lock.BreakOptions{Reason: "test", By: "test", IfToken: lb.Token}); err != nil {
		t.Fatal(err)
	}
	if n := leaseNodes(t, op, name); len(n) != 1 || !strings.Contains(n[0], la.Token) {
		t.Fatalf("after breaking lease %s: %v", lb.Token, n)
	}
	if _, err := b.Renew(ctx, name, lb.Token, 5*time.Second); errs.KindOf(err) != errs.KindLockLost {
		t.Fatalf("renew of the broken lease: %v", err)
	}
	_ = a.Release(ctx, name, la.Token)
}

// Finding 4: break writes its record on an empty lock node (so the broken holder is
// told who broke it) and says in the notes when the node holds other data.
func TestReviewFixBreakRecordOnlyOnEmptyNode(t *testing.T) {
	tg := reviewServer(t)
	ctx := context.Background()
	name := locktest.Name(t, "rec")
	holder, op := newLocker(t, tg), newLocker(t, tg)
	lease, err := holder.Acquire(ctx, name, lock.AcquireOptions{TTL: 5 * time.Second, Owner: owner})
	if err != nil {
		t.Fatal(err)
	}
	info, err := op.Break(ctx, name, lock.BreakOptions{Reason: "stuck", By: "ops"})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range info.Notes {
		if strings.Contains(n, "no break record") {
			t.Fatalf("break of an empty lock node skipped the record: %v", info.Notes)
		}
	}
	_, err = holder.Renew(ctx, name, lease.Token, 5*time.Second)
	nh, ok := lock.AsNotHeld(err)
	if !ok || nh.Reason != lock.LostBroken || nh.Break == nil || nh.Break.Reason != "stuck" {
		t.Fatalf("renew of the broken lease: %v (want lost: broken, with the record)", err)
	}
	// A node with application data: the record is skipped, and the notes say so.
	conn := op.Client().Conn()
	path := op.Root() + "/" + name
	if _, err := conn.Set(path, []byte("app=1"), -1); err != nil {
		t.Fatal(err)
	}
	lease2, err := holder.Acquire(ctx, name, lock.AcquireOptions{TTL: 5 * time.Second, Owner: owner})
	if err != nil {
		t.Fatal(err)
	}
	info, err = op.Break(ctx, name, lock.BreakOptions{Reason: "stuck", By: "ops"})
	if err != nil {
		t.Fatal(err)
	}
	got, _, err := conn.Get(path)
	if err != nil || string(got) != "app=1" {
		t.Fatalf("lock node data after break: %q %v", got, err)
	}
	if !strings.Contains(strings.Join(info.Notes, "\n"), "no break record written") {
		t.Fatalf("notes do not say the record was skipped: %v", info.Notes)
	}
	_ = holder.Release(ctx, name, lease2.Token)
	_ = conn.Delete(path, -1)
}

// Finding 5, the other way round: a semaphore acquire on a name held as a mutex is
// refused (usage error) and leaves no lease node; --semaphore 1 on a semaphore's name
// takes one of its leases (the semaphore layout), not the mutex beside it.
func TestReviewFixSemaphoreOnAMutexNameAndPermitsOne(t *testing.T) {
	tg := reviewServer(t)
	ctx := context.Background()
	name := locktest.Name(t, "mix2")
	m, s := newLocker(t, tg), newLocker(t, tg)
	lm, err := m.Acquire(ctx, name, lock.AcquireOptions{TTL: 5 * time.Second, Owner: owner})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Acquire(ctx, name, semOpt(2, lock.WaitFor(time.Second))); errs.KindOf(err) != errs.KindUsage || !strings.Contains(err.Error(), "is a mutex") {
		t.Fatalf("semaphore on a mutex's name: %v, want a usage error", err)
	}
	if n := leaseNodes(t, s, name); len(n) != 0 {
		t.Fatalf("the refused semaphore acquire left lease nodes: %v", n)
	}
	if err := m.Release(ctx, name, lm.Token); err != nil {
		t.Fatal(err)
	}
	sem := locktest.Name(t, "sem1")
	ls, err := s.Acquire(ctx, sem, semOpt(2, lock.WaitFor(time.Second)))
	if err != nil {
		t.Fatal(err)
	}
	one := semOpt(1, lock.WaitFor(0))
	l1, err := m.Acquire(ctx, sem, one)
	if err == nil {
		_ = m.Release(ctx, sem, l1.Token)
		t.Fatalf("--semaphore 1 on a semaphore with one lease taken was granted (fence %d): it must count the leases (1 permit, 1 taken)", l1.Fence)
	}
	// Review 2 (finding 4): refused as a usage error naming the recorded N (it
	// was "not acquired" before the permit count was checked).
	if errs.KindOf(err) != errs.KindUsage || !strings.Contains(err.Error(), "has 2 permits") {
		t.Fatalf("--semaphore 1 on a taken 2-permit semaphore: %v, want a usage error naming its 2 permits", err)
	}
	_ = s.Release(ctx, sem, ls.Token)
	l1, err = m.Acquire(ctx, sem, one)
	if err != nil {
		t.Fatal(err)
	}
	if n := leaseNodes(t, m, sem); len(n) != 1 || !strings.Contains(n[0], l1.Token) {
		t.Fatalf("--semaphore 1 on a semaphore's name: lease nodes %v, want its own lease", n)
	}
	_ = m.Release(ctx, sem, l1.Token)
}

// Finding 5's check is exact: a lock that merely has another lock below it named
// leases (a user's mutex "X/leases") is no semaphore; the mutex X is granted.
func TestReviewFixMutexBesideALockNamedLeases(t *testing.T) {
	tg := reviewServer(t)
	ctx := context.Background()
	name := locktest.Name(t, "parent")
	a, b := newLocker(t, tg), newLocker(t, tg)
	child, err := a.Acquire(ctx, name+"/leases", lock.AcquireOptions{TTL: 5 * time.Second, Owner: owner})
	if err != nil {
		t.Fatal(err)
	}
	parent, err := b.Acquire(ctx, name, lock.AcquireOptions{TTL: 5 * time.Second, Owner: owner})
	if err != nil {
		t.Fatalf("mutex %q beside a lock named %s/leases: %v", name, name, err)
	}
	_ = b.Release(ctx, name, parent.Token)
	_ = a.Release(ctx, name+"/leases", child.Token)
}
