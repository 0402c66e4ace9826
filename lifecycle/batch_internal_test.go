package lifecycle

import "testing"

// TestBatchToken pins the batch ClientToken: a function of the sorted old
// instances, their spec hashes, the request and the attempt, 56 ASCII
// characters (RunInstances accepts 64), never the single-launch form.
func TestBatchToken(t *testing.T) {
	olds := []string{"i-0aaaaaaaaaaaaaaa1", "i-0aaaaaaaaaaaaaaa2"}
	hashes := []string{"h1", "h2"}
	got := batchToken(olds, hashes, "key", 0)
	const want = "ec2ops-bc9d2fdd9798ffeb53cf7fa72bd549c8f4b094014887cba9a"
	if got != want {
		t.Fatalf("batchToken = %q, want %q", got, want)
	}
	for _, other := range []string{
		batchToken(olds, hashes, "key", 1),
		batchToken(olds[:1], hashes[:1], "key", 0),
		batchToken(olds, []string{"h1", "h3"}, "key", 0),
		batchToken(olds, hashes, "other", 0),
		clientToken(olds[0], hashes[0], 0),
	} {
		if other == got || len(other) > maxClientToken {
			t.Fatalf("token %q (against %q)", other, got)
		}
	}
}
