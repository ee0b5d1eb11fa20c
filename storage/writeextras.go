package storage

import (
	"context"
	"fmt"
)

// afterWrite stores the exemplars and metadata of b once Write has made
// its samples durable, and adds what was stored to the caller's
// WriteStats (see WithWriteStats). st holds the samples written. Neither
// fails a write whose samples are durable: a failure to keep them is
// logged, and the sender's next write repeats them anyway.
func (db *DB) afterWrite(ctx context.Context, tenant string, b *Batch, st WriteStats) error {
	if len(b.Metadata) > 0 {
		if err := db.meta.put(tenant, b.Metadata); err != nil {
			db.opts.Logger.Warn("metadata not stored", "tenant", tenant, "err", err)
		}
	}
	for i := range b.Series {
		if len(b.Series[i].Exemplars) > 0 {
			n, err := db.exemplars.write(tenant, b)
			if err != nil {
				db.opts.Logger.Warn("exemplars not stored", "tenant", tenant, "err", err)
			}
			st.Exemplars += n
			break
		}
	}
	if out := writeStatsOf(ctx); out != nil {
		out.Samples += st.Samples
		out.Histograms += st.Histograms
		out.Exemplars += st.Exemplars
		out.DroppedOld += st.DroppedOld
	}
	return nil
}

// openExtras loads the metadata and exemplars kept in shard 0.
func (db *DB) openExtras() error {
	pdb := db.shards[0].db
	db.meta = newMetadataStore(pdb, db.opts.MaxMetadataFamilies)
	if err := db.meta.load(); err != nil {
		return fmt.Errorf("load metadata: %w", err)
	}
	db.exemplars = newExemplarStore(pdb, max(0, db.opts.MaxExemplars))
	if err := db.exemplars.load(); err != nil {
		return fmt.Errorf("load exemplars: %w", err)
	}
	return nil
}

// extrasStatsInto adds the counters of the metadata and exemplar stores.
func (db *DB) extrasStatsInto(st *Stats) {
	st.ExemplarsOutOfOrder = db.exemplars.outOfOrder.Load()
	st.ExemplarsInvalid = db.exemplars.invalid.Load()
	st.MetadataDropped = db.meta.dropped.Load()
}
