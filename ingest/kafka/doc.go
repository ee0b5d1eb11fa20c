// Package kafka is the write path of the cluster (docs/cluster.md): a
// storage.Writer that produces every batch to an Apache Kafka topic and
// returns once Kafka acknowledged it, and the consumer a storage node runs
// to write the records of its partitions into its local storage.
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
package kafka
