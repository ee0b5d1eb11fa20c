package storage

// refTable finds a shard's series by ref, the series of all its tenants
// in one table: pages of refPageSize refs in the order of the refs, a page
// let go of once its series are all gone. Refs count up, so the pages in
// use are those of the series still there: 8 bytes a series, where a map
// by ref took about 24 (issue 18: a million series' memory). A reader
// checks the series' tenant. The shard's idxMu guards it.
type refTable struct {
	first uint64 // the page number of pages[0]
	pages []*refPage
	// shard is the shard's number, which tenantIndex.add gives its
	// series (memSeries.state).
	shard uint16
}

const refPageBits = 9

// refPageSize is how many refs a page holds.
const refPageSize = 1 << refPageBits

type refPage struct {
	n      int // series in s
	series [refPageSize]*memSeries
}

// get returns the series of ref, or nil.
func (t *refTable) get(ref uint64) *memSeries {
	p := ref>>refPageBits - t.first // (a ref before first wraps around)
	if p >= uint64(len(t.pages)) || t.pages[p] == nil {
		return nil
	}
	return t.pages[p].series[ref%refPageSize]
}

// set makes s the series of ref.
func (t *refTable) set(ref uint64, s *memSeries) {
	pn := ref >> refPageBits
	switch {
	case len(t.pages) == 0:
		t.first = pn
	case pn < t.first: // an older ref (start-up reads them in any order)
		pages := make([]*refPage, t.first-pn, t.first-pn+uint64(len(t.pages)))
		t.pages, t.first = append(pages, t.pages...), pn
	}
	for pn-t.first >= uint64(len(t.pages)) {
		t.pages = append(t.pages, nil)
	}
	pg := t.pages[pn-t.first]
	if pg == nil {
		pg = &refPage{}
		t.pages[pn-t.first] = pg
	}
	if pg.series[ref%refPageSize] == nil {
		pg.n++
	}
	pg.series[ref%refPageSize] = s
}

// each calls fn with every series of the table, by ref.
func (t *refTable) each(fn func(ref uint64, s *memSeries)) {
	for p, pg := range t.pages {
		if pg == nil {
			continue
		}
		for i, s := range pg.series {
			if s != nil {
				fn((t.first+uint64(p))<<refPageBits+uint64(i), s)
			}
		}
	}
}

// del forgets the series of ref.
func (t *refTable) del(ref uint64) {
	p := ref>>refPageBits - t.first
	if p >= uint64(len(t.pages)) || t.pages[p] == nil || t.pages[p].series[ref%refPageSize] == nil {
		return
	}
	pg := t.pages[p]
	pg.series[ref%refPageSize] = nil
	if pg.n--; pg.n > 0 {
		return
	}
	t.pages[p] = nil
	// Empty pages at either end go; those between wait for their
	// neighbours.
	k := 0
	for k < len(t.pages) && t.pages[k] == nil {
		k++
	}
	t.pages, t.first = t.pages[k:], t.first+uint64(k)
	for len(t.pages) > 0 && t.pages[len(t.pages)-1] == nil {
		t.pages = t.pages[:len(t.pages)-1]
	}
	if len(t.pages) == 0 {
		t.pages, t.first = nil, 0
	}
}
