// Command chunkstat splits the sealed float chunks of a stopped tsdb data
// folder into header, timestamp and value bytes, by value mode, with what
// zstd makes of each part, and estimates the entropy of the integer and
// decimal values (their deltas as Gaussian per chunk, plus which samples
// change): how far the chunks are from what the data holds (issue 18).
package main

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"

	"github.com/cockroachdb/pebble/v2"
	"github.com/klauspost/compress/zstd"

	"github.com/emsdb/tsdb/storage/chunkenc"
)

// stats gathers the parts of every chunk.
type stats struct {
	chunks, samples, header int64
	ts, vals                bytes.Buffer
	byKind                  map[byte]*bytes.Buffer // value bytes by mode & 3
	modes                   map[byte]int64         // chunks by mode
	entropyBits             float64
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: chunkstat DATA_DIR (of a stopped server)")
		os.Exit(2)
	}
	st := &stats{byKind: map[byte]*bytes.Buffer{}, modes: map[byte]int64{}}
	shards, _ := filepath.Glob(filepath.Join(os.Args[1], "shard-*", "pebble"))
	for _, dir := range shards {
		if err := st.shard(dir); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
	st.print()
}

func (st *stats) shard(dir string) error {
	db, err := pebble.Open(dir, &pebble.Options{ReadOnly: true, Logger: quiet{}})
	if err != nil {
		return err
	}
	defer db.Close()
	it, err := db.NewIter(&pebble.IterOptions{LowerBound: []byte{0x04}, UpperBound: []byte{0x05}})
	if err != nil {
		return err
	}
	defer it.Close()
	for it.First(); it.Valid(); it.Next() {
		if err := st.chunk(it.Value()); err != nil {
			return fmt.Errorf("%s: chunk %x: %w", dir, it.Key(), err)
		}
	}
	return it.Error()
}

func (st *stats) chunk(b []byte) error {
	ts, vs, err := chunkenc.DecodeDense(b, nil, nil)
	if err != nil {
		return err
	}
	mode := b[1]
	p := b[2:]
	for range 3 { // n, minT, maxT
		_, k := binary.Varint(p)
		p = p[k:]
	}
	st.header += int64(len(b) - len(p))
	for range len(ts) - 1 {
		_, k := binary.Varint(p)
		st.ts.Write(p[:k])
		p = p[k:]
	}
	st.vals.Write(p)
	kind := mode & 3
	if st.byKind[kind] == nil {
		st.byKind[kind] = &bytes.Buffer{}
	}
	st.byKind[kind].Write(p)
	st.modes[mode]++
	st.chunks++
	st.samples += int64(len(ts))
	if kind == 1 || kind == 2 {
		scale := 1.0
		if kind == 2 {
			scale = math.Pow10(int(p[0]))
		}
		st.entropyBits += entropy(vs, scale)
	}
	return nil
}

// entropy estimates the bits of vs scaled to integers: whether each
// sample changes, and the changes as a Gaussian of their sample variance.
func entropy(vs []float64, scale float64) float64 {
	var ds []float64
	prev := math.Round(vs[0] * scale)
	for _, v := range vs[1:] {
		x := math.Round(v * scale)
		if x != prev {
			ds = append(ds, x-prev)
		}
		prev = x
	}
	n := float64(len(vs) - 1)
	bits := 64.0 // the first value
	if pc := float64(len(ds)) / n; pc > 0 && pc < 1 {
		bits += n * -(pc*math.Log2(pc) + (1-pc)*math.Log2(1-pc))
	}
	if len(ds) > 1 {
		var m, q float64
		for _, d := range ds {
			m += d
		}
		m /= float64(len(ds))
		for _, d := range ds {
			q += (d - m) * (d - m)
		}
		// A Gaussian of deviation sd: log2(sd * sqrt(2πe)) bits; at least 1.
		bits += float64(len(ds)) * math.Max(1, math.Log2(math.Sqrt(q/float64(len(ds)))*4.133))
	}
	return bits
}

func (st *stats) print() {
	enc, _ := zstd.NewWriter(nil)
	per := func(n int) float64 { return float64(n) / float64(st.samples) }
	z := func(b []byte) int { return len(enc.EncodeAll(b, nil)) }
	fmt.Printf("chunks %d, samples %d (bytes per sample below; zstd: the part of every chunk compressed as one stream)\n", st.chunks, st.samples)
	fmt.Printf("header      %.3f\n", per(int(st.header)))
	fmt.Printf("timestamps  %.3f  zstd %.3f\n", per(st.ts.Len()), per(z(st.ts.Bytes())))
	fmt.Printf("values      %.3f  zstd %.3f\n", per(st.vals.Len()), per(z(st.vals.Bytes())))
	names := map[byte]string{0: "xor", 1: "int", 2: "decimal"}
	for k := range byte(3) {
		if b := st.byKind[k]; b != nil {
			fmt.Printf("  %-8s  %.3f  zstd %.3f\n", names[k], per(b.Len()), per(z(b.Bytes())))
		}
	}
	fmt.Printf("entropy estimate of the int and decimal values: %.3f\n", per(int(st.entropyBits/8)))
	modes := make([]byte, 0, len(st.modes))
	for m := range st.modes {
		modes = append(modes, m)
	}
	sort.Slice(modes, func(i, j int) bool { return modes[i] < modes[j] })
	for _, m := range modes {
		fmt.Printf("mode %#02x: %d chunks\n", m, st.modes[m])
	}
}

// quiet drops Pebble's informational logs.
type quiet struct{}

func (quiet) Infof(string, ...any)      {}
func (quiet) Errorf(f string, a ...any) { fmt.Fprintf(os.Stderr, f+"\n", a...) }
func (quiet) Fatalf(f string, a ...any) { fmt.Fprintf(os.Stderr, f+"\n", a...); os.Exit(1) }
