package cloudsim

import (
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"strings"
)

// accountID is the simulated account, the owner of every resource.
const accountID = "123456789012"

// mix64 is the SplitMix64 finalizer: a bijection on uint64 that spreads
// consecutive inputs over the whole range.
func mix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

func hashString(s string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(s))
	return h.Sum64()
}

// newID returns the next ID with prefix ("i-", "r-", "vol-", ...): the
// prefix and 17 hex digits, as EC2's long IDs. IDs depend only on the seed,
// the prefix and how many IDs with that prefix were made before, and never
// repeat within a Sim (lock held).
func (s *Sim) newID(prefix string) string {
	n := s.idSeq[prefix]
	s.idSeq[prefix] = n + 1
	base := mix64(s.seed ^ hashString(prefix))
	return fmt.Sprintf("%s0%016x", prefix, mix64(base+n))
}

// requestID returns a deterministic request ID in UUID format (lock held).
func (s *Sim) requestID() string {
	s.reqSeq++
	a := mix64(s.seed ^ 0x7265717565737421 + s.reqSeq)
	b := mix64(a)
	return fmt.Sprintf("%08x-%04x-%04x-%04x-%012x", a>>32, a>>16&0xffff, a&0xffff, b>>48, b&0xffffffffffff)
}

// resourceRand returns a random source private to one resource, seeded by
// the Sim's seed and the resource ID, so that its draws do not depend on
// how calls for other resources interleave.
func (s *Sim) resourceRand(id string) *rand.Rand {
	return rand.New(rand.NewPCG(s.seed, hashString(id)))
}

// validID reports whether id is prefix followed by 8 or 17 lower-case hex
// digits, the two EC2 ID formats.
func validID(id, prefix string) bool {
	if !strings.HasPrefix(id, prefix) {
		return false
	}
	h := id[len(prefix):]
	if len(h) != 8 && len(h) != 17 {
		return false
	}
	for _, c := range h {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}
