// Command pebblestat prints, for a tsdb data folder, the raw key and value
// bytes per key prefix and the bytes of table files: where the disk goes.
package main

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/cockroachdb/pebble/v2"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: pebblestat DATA_DIR")
		os.Exit(2)
	}
	type agg struct{ n, k, v int64 }
	tot := map[byte]*agg{}
	shards, _ := filepath.Glob(filepath.Join(os.Args[1], "shard-*", "pebble"))
	var sst int64
	for _, dir := range shards {
		db, err := pebble.Open(dir, &pebble.Options{ReadOnly: true})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		it, _ := db.NewIter(nil)
		for it.First(); it.Valid(); it.Next() {
			a := tot[it.Key()[0]]
			if a == nil {
				a = &agg{}
				tot[it.Key()[0]] = a
			}
			a.n++
			a.k += int64(len(it.Key()))
			a.v += int64(len(it.Value()))
		}
		it.Close()
		m := db.Metrics()
		for _, l := range m.Levels {
			sst += l.TablesSize
		}
		db.Close()
	}
	var ps []byte
	for p := range tot {
		ps = append(ps, p)
	}
	sort.Slice(ps, func(i, j int) bool { return ps[i] < ps[j] })
	for _, p := range ps {
		a := tot[p]
		fmt.Printf("prefix 0x%02x: %8d keys %10d key bytes %10d value bytes\n", p, a.n, a.k, a.v)
	}
	fmt.Printf("tables: %d bytes\n", sst)
}
