// Package kafka is the cluster on Apache Kafka (docs/cluster.md): a
// storage.Writer that produces every batch to a Kafka topic and returns
// once Kafka acknowledged it; the consumer a storage node runs to write
// the records of its partitions into its local storage; the node
// registry (a compacted topic) and the zones' groups as the membership;
// and the read path, a storage.Reader that asks a healthy owner of every
// partition (Reader, plan) and serves the nodes' internal read API; the
// leader election (Leader: the member of group tsdb-leader assigned
// partition 0 of <topic>-leader runs rules, ITSM and KPIs) and the
// replicated state a new leader continues from (State: the compacted
// topic <topic>-state over the local key-value store).
//
// A batch is split by partition, hash(tenant, labels) modulo the topic's
// partitions (SeriesHash, Partition): a series always goes to the same
// partition. Each part is one or more records whose value is a
// remote-write 2.0 message (io.prometheus.write.v2.Request: samples,
// native histograms, exemplars, metadata) and whose header "tenant" names
// the tenant; docs/cluster.md describes the record. The Producer produces
// them with an idempotent producer and acks=all; the Consumer, a member of
// its zone's consumer group, decodes them with remotewrite.Decoder, writes
// them to a storage.Writer (which returns once they are durable) and
// commits their offsets only then, so a restarted node resumes exactly
// where it was.
//
//	p, err := kafka.NewProducer(cfg, &kafka.Options{Validate: db.Validate})
//	// ingest writes through p instead of db
//	c, err := kafka.NewConsumer(cfg, db, nil)
//	go c.Run(ctx)
//	reg, err := kafka.NewRegistry(ctx, cfg, "http://10.0.0.5:8428", c, nil)
//	go reg.Run(ctx)
//	r := kafka.NewReader(cfg, db, reg, c, nil) // the engine reads through r
//	st, err := kafka.NewState(ctx, cfg, db, nil, nil) // ITSM and rule groups store through st
//	go st.Run(ctx)
//	l, err := kafka.NewLeader(ctx, cfg, func(ctx context.Context) { /* lead until ctx is done */ }, nil)
//	go l.Run(ctx)
package kafka
