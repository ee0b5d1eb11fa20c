package storage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"os"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/emsdb/tsdb/storage/internal/durable"
)

// intentFile holds the delete being applied, if any (docs/format.md). It
// is written, synced, before any shard is touched and removed once every
// shard's part is durable, so a crash in between leaves it for Open to
// apply again: a delete is either not begun or complete after a restart.
const intentFile = "delete-intent"

// deleteIntent is a DeleteSeries call.
type deleteIntent struct {
	tenant     string
	mint, maxt int64
	matchers   []*labels.Matcher
}

const intentVersion = 1

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// encode frames the intent as a WAL record is framed: u32 LE length, u32
// LE crc32c, then the body.
func (in *deleteIntent) encode() []byte {
	body := []byte{intentVersion}
	body = binary.AppendUvarint(body, uint64(len(in.tenant)))
	body = append(body, in.tenant...)
	body = binary.AppendVarint(body, in.mint)
	body = binary.AppendVarint(body, in.maxt)
	body = binary.AppendUvarint(body, uint64(len(in.matchers)))
	for _, m := range in.matchers {
		body = append(body, byte(m.Type))
		body = binary.AppendUvarint(body, uint64(len(m.Name)))
		body = append(body, m.Name...)
		body = binary.AppendUvarint(body, uint64(len(m.Value)))
		body = append(body, m.Value...)
	}
	out := binary.LittleEndian.AppendUint32(nil, uint32(len(body)))
	out = binary.LittleEndian.AppendUint32(out, crc32.Checksum(body, castagnoli))
	return append(out, body...)
}

func decodeIntent(b []byte) (*deleteIntent, error) {
	if len(b) < 8 || int(binary.LittleEndian.Uint32(b)) != len(b)-8 ||
		crc32.Checksum(b[8:], castagnoli) != binary.LittleEndian.Uint32(b[4:]) {
		return nil, fmt.Errorf("%w: %s: bad length or checksum", ErrCorrupt, intentFile)
	}
	r := recReader{b: b[8:]}
	if v := r.bytes(1); r.err == nil && v[0] != intentVersion {
		return nil, fmt.Errorf("storage: %s: version %d is not supported by this version", intentFile, v[0])
	}
	in := &deleteIntent{tenant: string(r.bytes(r.uvarint()))}
	in.mint, in.maxt = r.varint(), r.varint()
	n := r.uvarint()
	for i := uint64(0); i < n && r.err == nil; i++ {
		typ := r.bytes(1)
		name := string(r.bytes(r.uvarint()))
		value := string(r.bytes(r.uvarint()))
		if r.err != nil {
			break
		}
		if typ[0] > byte(labels.MatchNotRegexp) {
			return nil, fmt.Errorf("%w: %s: matcher type %d", ErrCorrupt, intentFile, typ[0])
		}
		m, err := labels.NewMatcher(labels.MatchType(typ[0]), name, value)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrCorrupt, intentFile, err)
		}
		in.matchers = append(in.matchers, m)
	}
	if r.err != nil || len(r.b) > 0 || n > math.MaxInt32 {
		return nil, fmt.Errorf("%w: %s: bad encoding", ErrCorrupt, intentFile)
	}
	return in, nil
}

// readIntent returns the delete a crash interrupted, or nil.
func (db *DB) readIntent() (*deleteIntent, error) {
	fs := db.opts.FS
	// A torn temporary copy is an intent that never was.
	if err := fs.Remove(fs.PathJoin(db.dir, intentFile+".tmp")); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	b, err := durable.ReadFile(fs, fs.PathJoin(db.dir, intentFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return decodeIntent(b)
}

func (db *DB) writeIntent(in *deleteIntent) error {
	return durable.WriteFile(db.opts.FS, db.opts.FS.PathJoin(db.dir, intentFile), in.encode())
}

func (db *DB) clearIntent() error {
	return durable.Remove(db.opts.FS, db.opts.FS.PathJoin(db.dir, intentFile))
}
