package fleet

import (
	"cmp"
	"hash/fnv"
	"slices"
)

// score is the rendezvous (highest random weight) score of a stream on a
// node: each stream goes to the live node with the highest score, so when a
// node leaves only its streams move, and when one joins it would take a
// fair share of new streams.
func score(stream, node string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(node))
	h.Write([]byte{0})
	h.Write([]byte(stream))
	// FNV's high bits mix poorly on short inputs; finish with splitmix64.
	x := h.Sum64()
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// nodeView is what placement needs to know of a node.
type nodeView struct {
	name     string
	cap      int // 0: unbounded
	draining bool
}

// plan is what one node must do for the fleet to match the placement:
// claim streams nobody owns that the placement gives it, and shed streams
// it must give away (draining, over its cap, or no longer registered). A
// node's cap is the smaller of its own (fleet.max_streams_per_node) and
// its fair share plus one (ceil(streams/nodes)+1 over the nodes not
// draining).
type plan struct {
	claim []string
	// shed are moves: each takes a token of fleet.moves_per_minute.
	shed []string
	// drop are owned streams no longer in the registry (not moves).
	drop []string
}

// place computes me's plan. Every node computes it from the same inputs
// (the registry, the live heartbeats, the leases), so they agree without
// talking; where their views differ for a moment, create-if-absent on the
// lease decides and stickiness keeps the result.
//
// streams are the registered streams, live the nodes with a heartbeat,
// owners the current lease holder of each leased stream (any node, live or
// not: a dead owner's lease keeps its streams until it expires).
func place(me string, streams []string, live []nodeView, owners map[string]string) plan {
	var p plan
	registered := make(map[string]bool, len(streams))
	for _, s := range streams {
		registered[s] = true
	}
	count := make(map[string]int)
	var mine []string
	for s, o := range owners {
		count[o]++
		if o == me {
			if registered[s] {
				mine = append(mine, s)
			} else {
				p.drop = append(p.drop, s)
			}
		}
	}
	slices.Sort(p.drop)
	var self *nodeView
	candidates := make([]nodeView, 0, len(live))
	for i := range live {
		n := &live[i]
		if n.name == me {
			c := *n
			self = &c
		}
		if !n.draining {
			candidates = append(candidates, *n)
		}
	}
	slices.SortFunc(candidates, func(a, b nodeView) int { return cmp.Compare(a.name, b.name) })
	// Besides its own cap, no node takes more than its fair share plus
	// one, so that nodes started one after another still share the work,
	// and a node that joins takes streams from the fullest.
	if len(candidates) > 0 {
		fair := (len(streams)+len(candidates)-1)/len(candidates) + 1
		for i := range candidates {
			if candidates[i].cap == 0 || candidates[i].cap > fair {
				candidates[i].cap = fair
			}
		}
		for _, n := range candidates {
			if self != nil && n.name == self.name {
				self.cap = n.cap
			}
		}
	}

	// Shed: all when draining, the excess over the cap otherwise, the
	// streams with the lowest score here first (they fit least well).
	if self != nil {
		n := 0
		switch {
		case self.draining:
			n = len(mine)
		case self.cap > 0 && len(mine) > self.cap:
			n = len(mine) - self.cap
		}
		if n > 0 {
			slices.SortFunc(mine, func(a, b string) int {
				return cmp.Or(cmp.Compare(score(a, me), score(b, me)), cmp.Compare(a, b))
			})
			p.shed = append(p.shed, mine[:n]...)
		}
	}
	if self == nil || self.draining {
		return p
	}

	// Claim: unowned streams in name order, each to the highest-scoring
	// candidate below its cap.
	sorted := slices.Clone(streams)
	slices.Sort(sorted)
	for _, s := range sorted {
		if _, ok := owners[s]; ok {
			continue
		}
		best, bestScore := "", uint64(0)
		for _, n := range candidates {
			if n.cap > 0 && count[n.name] >= n.cap {
				continue
			}
			if sc := score(s, n.name); best == "" || sc > bestScore {
				best, bestScore = n.name, sc
			}
		}
		if best == "" {
			continue // every node is full
		}
		count[best]++
		if best == me {
			p.claim = append(p.claim, s)
		}
	}
	return p
}
