package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/emsdb/tsdb/ingest/kafka"
)

// clusterRetireNode serves `tsdb cluster retire-node`: it removes a node
// that is gone for good from the cluster's registry (the tombstone of its
// key in <topic>-nodes), so that the partitions it held become readable
// in its zone again from the nodes that hold them now.
func clusterRetireNode(args []string, out io.Writer) error {
	fset := flag.NewFlagSet("cluster retire-node", flag.ContinueOnError)
	configFile := fset.String("config.file", "", "a config file with the cluster: section (brokers, topic, tls, sasl), e.g. any node's")
	force := fset.Bool("force", false, "retire the node even if it announced itself within the session timeout (a running node announces itself again)")
	timeout := fset.Duration("timeout", 30*time.Second, "how long to wait for Kafka")
	fset.Usage = func() {
		fmt.Fprintln(fset.Output(), "usage: tsdb cluster retire-node --config.file F [--force] <zone>.<node>")
		fset.PrintDefaults()
	}
	if err := fset.Parse(args); err != nil {
		return err
	}
	if fset.NArg() != 1 {
		fset.Usage()
		return errors.New("name one node: <zone>.<node> (or <zone>/<node>)")
	}
	if *configFile == "" {
		return errors.New("--config.file is required: the cluster: section says where Kafka is")
	}
	cfg, err := loadConfig(*configFile)
	if err != nil {
		return err
	}
	if cfg.Cluster == nil {
		return fmt.Errorf("%s has no cluster: section", *configFile)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	n, err := kafka.RetireNode(ctx, *cfg.Cluster, fset.Arg(0), *force, time.Now())
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "retired %s (%s, last seen %s, held partitions %v): its tombstone is in %s\n",
		n.Zone+"/"+n.Node, n.URL, time.UnixMilli(n.Seen).UTC().Format(time.RFC3339), n.Held, cfg.Cluster.RegistryTopic())
	return nil
}
