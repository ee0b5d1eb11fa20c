package main

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestRedactConfig(t *testing.T) {
	in := `auth:
  users:
    - {name: kim, password_hash: "$2a$10$abc", token_sha256: deadbeef, roles: [read]}
mqtt:
  brokers:
    - url: tcp://user:hunter2@127.0.0.1:1883
      password: hunter2
snmp:
  targets: [{address: 10.0.0.1, community: public}]
itsm:
  receivers:
    - name: pd
      routing_key: R0UT1NG
      headers: {Authorization: Bearer xyz, X-Team: ops}
      tls: {key_file: /etc/key.pem}
`
	out := redactConfig([]byte(in))
	for _, secret := range []string{"$2a$10$abc", "deadbeef", "hunter2", "public", "R0UT1NG", "Bearer xyz"} {
		require.NotContains(t, out, secret)
	}
	for _, kept := range []string{"name: kim", "X-Team: ops", "key_file: /etc/key.pem", "127.0.0.1:1883", "roles: [read]"} {
		require.Contains(t, out, kept)
	}
	require.Empty(t, redactConfig([]byte("auth: [not a map")), "a file that does not parse is not shown raw")
}
