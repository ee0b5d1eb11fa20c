package storage

import (
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/dgraph-io/ristretto/v2"
	"github.com/prometheus/prometheus/model/labels"

	"github.com/emsdb/tsdb/storage/internal/invariants"
)

// tenantIndex is the inverted index of one tenant's series in one shard.
// It lives in memory and is rebuilt from the series keys at start-up; the
// shard's idxMu guards it. Postings lists are sorted by ref and never
// modified in place once published (removal copies), so a reader may keep
// a list after releasing the lock.
type tenantIndex struct {
	id   uint32
	name string
	// refs finds series by ref: the shard's table, shared by its tenants
	// (get checks the tenant); n counts the tenant's series.
	refs *refTable
	n    int
	// byHash finds a series by the hash of its labels; collide holds the
	// others of a hash that two label sets share (a map of slices would
	// cost every series a slice header and an allocation for what 64-bit
	// hashes make rare).
	byHash   map[uint64]*memSeries
	collide  map[uint64][]*memSeries
	postings map[string]map[string]valueRefs // label name -> value -> refs
	// lists are the refs of the values with more than one series
	// (valueRefs); free are the indexes of lists let go of, to reuse.
	lists [][]uint64
	free  []int
	all   []uint64
	// valueGen counts the values added per label name; cached regex
	// results carry it so a new value invalidates them.
	valueGen map[string]uint64
	// seriesGen counts the series added and removed; cached selector
	// matches carry it (querier.match).
	seriesGen uint64
	// ordered holds each label name's values in order, so that a regex
	// with a literal prefix (id=~"0012.*") looks at the values under its
	// prefix instead of all of them: a million values scattered in memory
	// take tens of milliseconds to scan the first time.
	ordered map[string]*orderedValues
}

// valueRefs are the series of a label value: the ref itself where the
// value has one series, as most values of a label like a request id have
// (a million such values took a million one-ref lists: 48 bytes a value
// more, and an allocation each; issue 18), else, with listed set, the
// index of its list in tenantIndex.lists.
type valueRefs uint64

// listed marks a valueRefs that indexes a list; a ref never has it (refs
// count up from 1).
const listed valueRefs = 1 << 63

// list returns the index of h's list, if it has one.
func (h valueRefs) list() (int, bool) { return int(h &^ listed), h&listed != 0 }

// refsOf returns the refs of h, sorted: its list, or its ref in one's
// array.
func (ti *tenantIndex) refsOf(h valueRefs, one *[1]uint64) []uint64 {
	if i, ok := h.list(); ok {
		return ti.lists[i]
	}
	one[0] = uint64(h)
	return one[:]
}

// refsFor returns the refs of label name=value (nil: none), sorted. A
// value of one series costs an allocation.
func (ti *tenantIndex) refsFor(name, value string) []uint64 {
	h, ok := ti.postings[name][value]
	if !ok {
		return nil
	}
	if i, ok := h.list(); ok {
		return ti.lists[i]
	}
	return []uint64{uint64(h)}
}

// addRef adds ref to the refs of a value (ok: it had some).
func (ti *tenantIndex) addRef(h valueRefs, ok bool, ref uint64) valueRefs {
	if invariants.Enabled && valueRefs(ref)&listed != 0 {
		_ = invariants.Failf("ref %d has the listed bit", ref)
	}
	if !ok {
		return valueRefs(ref)
	}
	if i, ok := h.list(); ok {
		ti.lists[i] = appendRef(ti.lists[i], ref)
		return h
	}
	if uint64(h) == ref {
		return h
	}
	return ti.newList(appendRef([]uint64{uint64(h)}, ref))
}

// setRefs makes refs (sorted, not empty) the refs of a value that had h.
func (ti *tenantIndex) setRefs(h valueRefs, refs []uint64) valueRefs {
	i, isList := h.list()
	switch {
	case len(refs) == 1:
		ti.dropRefs(h)
		return valueRefs(refs[0])
	case isList:
		ti.lists[i] = refs
		return h
	}
	return ti.newList(refs)
}

func (ti *tenantIndex) newList(refs []uint64) valueRefs {
	if n := len(ti.free); n > 0 {
		i := ti.free[n-1]
		ti.free = ti.free[:n-1]
		ti.lists[i] = refs
		return listed | valueRefs(i)
	}
	ti.lists = append(ti.lists, refs)
	return listed | valueRefs(len(ti.lists)-1)
}

// dropRefs lets go of the list of a value removed.
func (ti *tenantIndex) dropRefs(h valueRefs) {
	if i, ok := h.list(); ok {
		ti.freeList(i)
	}
}

func (ti *tenantIndex) freeList(i int) {
	ti.lists[i] = nil
	ti.free = append(ti.free, i)
}

// unionOf returns the refs of the given values of label name, sorted and
// without duplicates: one value's list itself.
func (ti *tenantIndex) unionOf(name string, values []string) []uint64 {
	if len(values) == 1 {
		return ti.refsFor(name, values[0])
	}
	vals := ti.postings[name]
	var one [1]uint64
	n := 0
	for _, v := range values {
		if h, ok := vals[v]; ok {
			n += len(ti.refsOf(h, &one))
		}
	}
	if n == 0 {
		return nil
	}
	out := make([]uint64, 0, n)
	for _, v := range values {
		if h, ok := vals[v]; ok {
			out = append(out, ti.refsOf(h, &one)...)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// orderedValues are a label name's values: sorted as of the last merge,
// and those added since in fresh, unsorted. Values removed since stay
// until the next merge (stale counts them); a reader checks postings.
type orderedValues struct {
	sorted, fresh []string
	stale         int
}

// minMerge is the fewest fresh values merged into the sorted ones; above
// it they are merged once they are a quarter of them.
const minMerge = 1024

func (ov *orderedValues) add(v string, postings map[string]valueRefs) {
	ov.fresh = append(ov.fresh, v)
	if len(ov.fresh) >= max(minMerge, len(ov.sorted)/4) {
		ov.merge(postings)
	}
}

// merge sorts the fresh values into the sorted ones, dropping duplicates
// and, when some were removed, the values postings no longer has.
func (ov *orderedValues) merge(postings map[string]valueRefs) {
	if len(ov.fresh) == 0 && ov.stale == 0 {
		return
	}
	slices.Sort(ov.fresh)
	out := make([]string, 0, len(ov.sorted)+len(ov.fresh))
	a, b := ov.sorted, ov.fresh
	for len(a) > 0 || len(b) > 0 {
		var v string
		switch {
		case len(b) == 0 || (len(a) > 0 && a[0] <= b[0]):
			v, a = a[0], a[1:]
		default:
			v, b = b[0], b[1:]
		}
		if n := len(out); n > 0 && out[n-1] == v {
			continue
		}
		if ov.stale > 0 {
			if _, ok := postings[v]; !ok {
				continue
			}
		}
		out = append(out, v)
	}
	ov.sorted, ov.fresh, ov.stale = out, nil, 0
}

// withPrefix appends to dst the values that start with prefix and that m
// matches, ascending.
func (ov *orderedValues) withPrefix(dst []string, prefix string, m *labels.Matcher, postings map[string]valueRefs) []string {
	n := len(dst)
	i, _ := slices.BinarySearch(ov.sorted, prefix)
	for _, v := range ov.sorted[i:] {
		if !strings.HasPrefix(v, prefix) {
			break
		}
		if _, ok := postings[v]; ok && m.Matches(v) {
			dst = append(dst, v)
		}
	}
	fresh := false
	for _, v := range ov.fresh {
		if strings.HasPrefix(v, prefix) && m.Matches(v) {
			if _, ok := postings[v]; ok {
				dst, fresh = append(dst, v), true
			}
		}
	}
	if fresh { // a value removed and added again is in both
		slices.Sort(dst[n:])
		dst = slices.Compact(dst)
	}
	return dst
}

// settle merges every label name's fresh values (after start-up).
func (ti *tenantIndex) settle() {
	for name, ov := range ti.ordered {
		ov.merge(ti.postings[name])
	}
}

// newTenantIndex returns an empty index that finds its series in refs
// (nil: a table of its own).
func newTenantIndex(id uint32, name string, refs *refTable) *tenantIndex {
	if refs == nil {
		refs = &refTable{}
	}
	return &tenantIndex{
		id:       id,
		name:     name,
		refs:     refs,
		byHash:   map[uint64]*memSeries{},
		collide:  map[uint64][]*memSeries{},
		postings: map[string]map[string]valueRefs{},
		valueGen: map[string]uint64{},
		ordered:  map[string]*orderedValues{},
	}
}

// get returns the tenant's series of ref, or nil.
func (ti *tenantIndex) get(ref uint64) *memSeries {
	if s := ti.refs.get(ref); s != nil && s.tenant == ti.id {
		return s
	}
	return nil
}

// each calls fn with every series of the tenant, by ref.
func (ti *tenantIndex) each(fn func(*memSeries)) {
	for _, ref := range ti.all {
		if s := ti.get(ref); s != nil {
			fn(s)
		}
	}
}

func (ti *tenantIndex) lookup(hash uint64, lset labels.Labels) *memSeries {
	if s := ti.byHash[hash]; s != nil && labels.Equal(s.lset, lset) {
		return s
	}
	for _, s := range ti.collide[hash] {
		if labels.Equal(s.lset, lset) {
			return s
		}
	}
	return nil
}

// add publishes s; refs must be added in increasing order per tenant,
// except during start-up where finish sorts the lists.
func (ti *tenantIndex) add(hash uint64, s *memSeries) {
	ti.seriesGen++
	s.state.setShard(ti.refs.shard)
	ti.refs.set(s.ref, s)
	ti.n++
	if ti.byHash[hash] == nil {
		ti.byHash[hash] = s
	} else {
		ti.collide[hash] = append(ti.collide[hash], s)
	}
	ti.all = appendRef(ti.all, s.ref)
	s.lset.Range(func(l labels.Label) {
		vals := ti.postings[l.Name]
		if vals == nil {
			vals = map[string]valueRefs{}
			ti.postings[l.Name] = vals
		}
		h, ok := vals[l.Value]
		vals[l.Value] = ti.addRef(h, ok, s.ref)
		if !ok {
			ti.valueGen[l.Name]++
			ov := ti.ordered[l.Name]
			if ov == nil {
				ov = &orderedValues{}
				ti.ordered[l.Name] = ov
			}
			ov.add(l.Value, vals)
		}
	})
}

// appendRef appends ref keeping the list sorted; out-of-order refs only
// happen while replaying the log, so the slow path is rare.
func appendRef(list []uint64, ref uint64) []uint64 {
	if n := len(list); n == 0 || list[n-1] < ref {
		return append(list, ref)
	}
	i, found := slices.BinarySearch(list, ref)
	if found {
		return list
	}
	list = slices.Insert(slices.Clip(list), i, ref)
	if invariants.Enabled && ((i > 0 && list[i-1] >= ref) || (i+1 < len(list) && list[i+1] <= ref)) {
		_ = invariants.Failf("postings unsorted around ref %d", ref)
	}
	return list
}

// unhash removes s from under hash h, moving up a series that shares h.
func (ti *tenantIndex) unhash(h uint64, s *memSeries) {
	others := ti.collide[h]
	if ti.byHash[h] == s {
		if len(others) == 0 {
			delete(ti.byHash, h)
			return
		}
		ti.byHash[h], others = others[0], others[1:]
	} else {
		others = slices.DeleteFunc(slices.Clone(others), func(o *memSeries) bool { return o == s })
	}
	if len(others) == 0 {
		delete(ti.collide, h)
	} else {
		ti.collide[h] = slices.Clone(others)
	}
}

// hashed reports whether s is under hash h.
func (ti *tenantIndex) hashed(h uint64, s *memSeries) bool {
	return ti.byHash[h] == s || slices.Contains(ti.collide[h], s)
}

// remove unpublishes the given series.
func (ti *tenantIndex) remove(hash func(*memSeries) uint64, gone []*memSeries) {
	if len(gone) == 0 {
		return
	}
	ti.seriesGen++
	refs := make(map[uint64]struct{}, len(gone))
	touched := map[string]map[string]struct{}{}
	for _, s := range gone {
		refs[s.ref] = struct{}{}
		if ti.get(s.ref) == s {
			ti.refs.del(s.ref)
			ti.n--
		}
		h := hash(s)
		ti.unhash(h, s)
		s.lset.Range(func(l labels.Label) {
			if touched[l.Name] == nil {
				touched[l.Name] = map[string]struct{}{}
			}
			touched[l.Name][l.Value] = struct{}{}
		})
	}
	without := func(list []uint64) []uint64 {
		return slices.DeleteFunc(slices.Clone(list), func(r uint64) bool { _, ok := refs[r]; return ok })
	}
	ti.all = without(ti.all)
	var one [1]uint64
	for name, vals := range touched {
		pv := ti.postings[name]
		for v := range vals {
			h := pv[v]
			l := without(ti.refsOf(h, &one))
			if len(l) == 0 {
				ti.dropRefs(h)
				delete(pv, v)
				ti.ordered[name].stale++
			} else {
				pv[v] = ti.setRefs(h, l)
			}
		}
		if len(ti.postings[name]) == 0 {
			delete(ti.postings, name)
			delete(ti.ordered, name)
		} else if ov := ti.ordered[name]; ov.stale > len(ov.sorted)/4 {
			ov.merge(ti.postings[name])
		}
		ti.valueGen[name]++
	}
}

// regexCache remembers which values of a label a regex matcher selects.
type regexCache = ristretto.Cache[string, cachedValues]

type cachedValues struct {
	gen    uint64
	values []string
}

// matchingValues returns the values of label name that m matches.
func (ti *tenantIndex) matchingValues(m *labels.Matcher, cache *regexCache, shardID int) []string {
	vals := ti.postings[m.Name]
	switch m.Type {
	case labels.MatchEqual:
		if _, ok := vals[m.Value]; ok {
			return []string{m.Value}
		}
		return nil
	case labels.MatchRegexp:
		if set := m.SetMatches(); len(set) > 0 {
			out := make([]string, 0, len(set))
			for _, v := range set {
				if _, ok := vals[v]; ok {
					out = append(out, v)
				}
			}
			return out
		}
	}
	var key string
	gen := ti.valueGen[m.Name]
	if cache != nil && (m.Type == labels.MatchRegexp || m.Type == labels.MatchNotRegexp) {
		key = strings.Join([]string{strconv.Itoa(shardID), ti.name, m.String()}, "\xff")
		if c, ok := cache.Get(key); ok && c.gen == gen {
			return c.values
		}
	}
	out := make([]string, 0)
	if p := m.Prefix(); p != "" && m.Type == labels.MatchRegexp && ti.ordered[m.Name] != nil {
		out = ti.ordered[m.Name].withPrefix(out, p, m, vals)
	} else {
		for v := range vals {
			if m.Matches(v) {
				out = append(out, v)
			}
		}
	}
	if key != "" {
		cost := int64(len(key) + 24)
		for _, v := range out {
			cost += int64(len(v) + 16)
		}
		cache.Set(key, cachedValues{gen: gen, values: out}, cost)
	}
	return out
}

// postingsFor returns the sorted refs of the series matching every matcher.
func (ti *tenantIndex) postingsFor(ms []*labels.Matcher, cache *regexCache, shardID int) []uint64 {
	var pos, neg [][]uint64
	for _, m := range ms {
		if m.Matches("") {
			// Series without the label match too: subtract the values
			// that do not match.
			if m.Type == labels.MatchRegexp && m.Value == ".*" {
				continue // matches everything
			}
			inv, err := m.Inverse()
			if err != nil {
				continue
			}
			if u := ti.unionOf(m.Name, ti.matchingValues(inv, cache, shardID)); len(u) > 0 {
				neg = append(neg, u)
			}
			continue
		}
		u := ti.unionOf(m.Name, ti.matchingValues(m, cache, shardID))
		if len(u) == 0 {
			return nil
		}
		pos = append(pos, u)
	}
	var res []uint64
	if len(pos) == 0 {
		res = ti.all
	} else {
		sort.Slice(pos, func(i, j int) bool { return len(pos[i]) < len(pos[j]) })
		res = pos[0]
		for _, p := range pos[1:] {
			res = intersect(res, p)
			if len(res) == 0 {
				return nil
			}
		}
	}
	for _, n := range neg {
		res = subtract(res, n)
	}
	return res
}

func intersect(a, b []uint64) []uint64 {
	out := make([]uint64, 0, min(len(a), len(b)))
	for i, j := 0, 0; i < len(a) && j < len(b); {
		switch {
		case a[i] < b[j]:
			i++
		case a[i] > b[j]:
			j++
		default:
			out = append(out, a[i])
			i++
			j++
		}
	}
	return out
}

func subtract(a, b []uint64) []uint64 {
	out := make([]uint64, 0, len(a))
	j := 0
	for _, r := range a {
		for j < len(b) && b[j] < r {
			j++
		}
		if j < len(b) && b[j] == r {
			continue
		}
		out = append(out, r)
	}
	return out
}
