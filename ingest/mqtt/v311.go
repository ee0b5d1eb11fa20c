package mqtt

import (
	"crypto/tls"
	"net/url"
	"time"

	pahov3 "github.com/eclipse/paho.mqtt.golang"
)

// startV311 connects with MQTT 3.1.1 (for brokers and devices without
// MQTT 5): a persistent session (clean session off), QoS 1, and manual
// acknowledgements after the durable write, as with MQTT 5.
func (s *Subscriber) startV311(u *url.URL, tlsCfg *tls.Config) error {
	scheme := "tcp"
	if u.Scheme == "tls" {
		scheme = "ssl"
	}
	o := pahov3.NewClientOptions().
		AddBroker(scheme + "://" + u.Host).
		SetClientID(s.cfg.ClientID).
		SetCleanSession(false).
		SetResumeSubs(true).
		SetOrderMatters(true).
		SetAutoAckDisabled(true).
		SetAutoReconnect(true).
		SetConnectRetry(true).
		SetConnectRetryInterval(time.Second).
		SetMaxReconnectInterval(5 * time.Second).
		SetKeepAlive(30 * time.Second).
		SetUsername(s.cfg.Username).
		SetPassword(s.cfg.Password)
	if tlsCfg != nil {
		o.SetTLSConfig(tlsCfg)
	}
	// The broker sends what it queued for the session right after CONNACK,
	// before SUBSCRIBE has registered its handler: without a default
	// handler paho drops those messages unacknowledged and they stay stuck
	// until the next reconnect.
	o.SetDefaultPublishHandler(s.handleV311)
	o.SetOnConnectHandler(func(c pahov3.Client) {
		s.up.Set(1)
		s.health.Up()
		s.log.Info("mqtt connected", "protocol", "3.1.1")
		filters := map[string]byte{}
		for _, x := range s.cfg.Subscriptions {
			filters[x.filter] = 1
		}
		tok := c.SubscribeMultiple(filters, s.handleV311)
		go func() {
			if tok.WaitTimeout(10*time.Second) && tok.Error() != nil {
				s.log.Warn("mqtt subscribe", "err", tok.Error())
			}
		}()
	})
	o.SetConnectionLostHandler(func(_ pahov3.Client, err error) {
		s.up.Set(0)
		s.health.Down("connection lost: " + err.Error())
	})
	c := pahov3.NewClient(o)
	c.Connect() // retries in the background (SetConnectRetry)
	s.v3 = c
	return nil
}

func (s *Subscriber) handleV311(_ pahov3.Client, m pahov3.Message) {
	s.commits.add(m.Topic(), m.Payload(), m.Ack)
}
