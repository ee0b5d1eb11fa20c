package storage

import (
	"fmt"
	"unicode/utf8"
)

// Validate checks b as Write would before writing anything, without
// writing: the tenant's name, every label set (count, lengths, order,
// UTF-8), the timestamps and the histograms. It returns the error Write
// would (wrapping ErrInvalidSeries or ErrInvalidSample), or nil.
//
// NB: it does not check what depends on the DB's state at the time of the
// write (the series limits, ErrTooManySeries; a full disk; the retention
// cutoff, which drops old samples silently): a writer that hands the batch
// to another process (the cluster's Kafka producer) validates here, and
// the process that finally writes checks the rest.
func (db *DB) Validate(tenant string, b *Batch) error {
	if tenant == "" || len(tenant) > 256 || !utf8.ValidString(tenant) {
		return fmt.Errorf("%w: tenant %q must be 1 to 256 bytes of UTF-8", ErrInvalidSeries, tenant)
	}
	for i := range b.Series {
		bs := &b.Series[i]
		lset, err := b.LabelsOf(i)
		if err != nil {
			return invalidSeries("series %d: %v", i, err)
		}
		if err := db.validateLabels(i, lset); err != nil {
			return err
		}
		for _, s := range bs.Samples {
			if s.T < minStorableT || s.T > maxStorableT {
				return fmt.Errorf("%w: timestamp %d of series %s is out of the storable range", ErrInvalidSample, s.T, lset.WithoutEmpty())
			}
		}
		if err := validateHistograms(lset.WithoutEmpty(), bs.Histograms); err != nil {
			return err
		}
	}
	return nil
}
