package influx

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"
	"github.com/valyala/fasthttp"

	"github.com/emsdb/tsdb/storage"
	st "github.com/emsdb/tsdb/storage/storagetest"
)

func TestParseLine(t *testing.T) {
	p, err := ParseLine([]byte(`cpu\,x,host=a\ b,region=eu usage=0.5,count=3i,ok=true,note="hi, \"there\"",big=7u 1700000000000000000`))
	require.NoError(t, err)
	require.Equal(t, "cpu,x", p.Measurement)
	require.Equal(t, []Tag{{"host", "a b"}, {"region", "eu"}}, p.Tags)
	require.Equal(t, []Field{{"usage", 0.5}, {"count", 3}, {"ok", 1}, {"big", 7}}, p.Fields, "strings are skipped")
	require.True(t, p.HasTime)
	require.Equal(t, int64(1700000000000000000), p.Time)

	p, err = ParseLine([]byte(`mem free=1e3`))
	require.NoError(t, err)
	require.False(t, p.HasTime)
	require.Equal(t, 1000.0, p.Fields[0].Value)

	for _, bad := range []string{
		`cpu`, `cpu,host=a`, `,host=a v=1`, `cpu v=`, `cpu v=abc`, `cpu v=1 notatime`,
		`cpu,host v=1`, `cpu v="open`, `cpu v=NaN`, `cpu v=1i2`,
	} {
		_, err := ParseLine([]byte(bad))
		require.Error(t, err, bad)
	}
}

func TestParseReportsBadLinesAndKeepsGoodOnes(t *testing.T) {
	pts, errs := Parse([]byte("# comment\ncpu v=1\n\ncpu v=oops\nmem v=2\r\n"))
	require.Len(t, pts, 2)
	require.Len(t, errs, 1)
	require.Equal(t, 4, errs[0].Line)
	require.Contains(t, errs[0].Error(), "line 4")

	// A line over MaxLineBytes is bad, however it is made up: its tags and
	// fields would otherwise take memory in proportion to the body.
	long := "m " + strings.Repeat("f=1,", MaxLineBytes/4) + "g=1\nok v=1\n"
	pts, errs = Parse([]byte(long))
	require.Len(t, pts, 1)
	require.Len(t, errs, 1)
	require.ErrorContains(t, errs[0], "line 1: line of 1048581 bytes is longer than the limit of 1048576")
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"cpu,host=a usage=1,idle=2i 1700000000000000000\n",
		`m\ x,t\=1=v\,2 f="s\"q",g=t`,
		"a v=1\nb,c=d e=2u\n#x\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		pts, _ := Parse(b)
		for _, p := range pts {
			if p.Measurement == "" || len(p.Fields) == 0 && !bytes.Contains(b, []byte(`"`)) {
				t.Fatalf("accepted a point without measurement or fields: %+v", p)
			}
			for _, f := range p.Fields {
				if math.IsNaN(f.Value) || math.IsInf(f.Value, 0) {
					t.Fatalf("accepted %v", f.Value)
				}
			}
		}
	})
}

func post(t *testing.T, h func(*fasthttp.RequestCtx), uri, body string, gz bool) (int, string) {
	t.Helper()
	var ctx fasthttp.RequestCtx
	ctx.Request.Header.SetMethod("POST")
	ctx.Request.SetRequestURI(uri)
	if gz {
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		_, _ = zw.Write([]byte(body))
		_ = zw.Close()
		ctx.Request.Header.Set("Content-Encoding", "gzip")
		ctx.Request.SetBody(buf.Bytes())
	} else {
		ctx.Request.SetBodyString(body)
	}
	h(&ctx)
	return ctx.Response.StatusCode(), string(ctx.Response.Body())
}

func TestHandler(t *testing.T) {
	db := st.Open(t, nil)
	now := time.UnixMilli(1_700_000_000_000)
	h := New(db, &Options{Now: func() time.Time { return now }})

	code, body := post(t, h.ServeV1, "/write?db=telegraf&precision=s", "cpu,host=a usage=0.5,idle=99i 1700000001\ncpu,host=b usage=1\n", false)
	require.Equal(t, 204, code, body)
	code, body = post(t, h.ServeV2, "/api/v2/write?org=o&bucket=iot&precision=ms", "temp,dev=x c=21.5 1700000002000", true)
	require.Equal(t, 204, code, body)

	got := st.Read(t, db, "default", 0, math.MaxInt64, labels.MustNewMatcher(labels.MatchRegexp, "__name__", ".+"))
	require.Equal(t, map[string][]storage.Sample{
		`{__name__="cpu_idle", db="telegraf", host="a"}`:  {{T: 1_700_000_001_000, V: 99}},
		`{__name__="cpu_usage", db="telegraf", host="a"}`: {{T: 1_700_000_001_000, V: 0.5}},
		`{__name__="cpu_usage", db="telegraf", host="b"}`: {{T: 1_700_000_000_000, V: 1}},
		`{__name__="temp_c", db="iot", dev="x"}`:          {{T: 1_700_000_002_000, V: 21.5}},
	}, got)

	// A partial write names the bad line, stores the good ones only.
	code, body = post(t, h.ServeV1, "/write", "good v=1 1700000003000000000\nbad v=x\n", false)
	require.Equal(t, 400, code)
	require.Contains(t, body, "line 2")
	require.Contains(t, body, "partial write")
	require.Len(t, st.Read(t, db, "default", 0, math.MaxInt64, st.Eq("__name__", "good_v")), 1)

	code, body = post(t, h.ServeV1, "/write?precision=fortnight", "x v=1", false)
	require.Equal(t, 400, code)
	require.Contains(t, body, "precision")
	code, _ = post(t, h.ServeV2, "/api/v2/write", "x v=1", false)
	require.Equal(t, 204, code)

	var ctx fasthttp.RequestCtx
	ctx.Request.Header.SetMethod("POST")
	ctx.Request.Header.Set("Content-Encoding", "gzip")
	ctx.Request.SetBodyString("not gzip")
	h.ServeV1(&ctx)
	require.Equal(t, 400, ctx.Response.StatusCode())
	require.True(t, strings.Contains(string(ctx.Response.Body()), "gzip"))
	_ = context.Background()
}

// A timestamp that overflows int64 once scaled to milliseconds, or that
// storage cannot keep, is a bad line named in the 400; it used to wrap
// around and be stored near 1970 with a 204 (#23).
func TestHandlerRefusesTimestampsOutOfRange(t *testing.T) {
	db := st.Open(t, nil)
	h := New(db, nil)
	f := func(precision, ts, want string) {
		t.Helper()
		code, body := post(t, h.ServeV1, "/write?precision="+precision, "ok v=1 1\nbad v=1 "+ts+"\n", false)
		require.Equal(t, 400, code, body)
		require.Contains(t, body, "(line 2: ", body)
		require.Contains(t, body, want, body)
		require.Contains(t, body, "1 bad lines not stored", body)
	}
	f("s", "9223372036854775807", "timestamp 9223372036854775807 at precision s overflows")
	f("s", "-9223372036854775808", "timestamp -9223372036854775808 at precision s overflows")
	f("s", "9223372036854776", "overflows")
	f("h", "2562047788015216", "overflows")
	f("m", "-153722867280913", "overflows")
	f("ms", "9223372036854775807", "out of the storable range")
	f("ms", "-9223372036854775807", "out of the storable range")
	f("ns", "9223372036854775808", "bad timestamp")
	f("s", "185542587100800", "out of the storable range")
	got := st.Read(t, db, "default", math.MinInt64, math.MaxInt64, labels.MustNewMatcher(labels.MatchRegexp, "__name__", ".+"))
	require.Len(t, got, 1)
	for _, smp := range got[`{__name__="bad_v"}`] {
		t.Errorf("stored %v", smp)
	}
	// The largest timestamps that fit are stored where they say.
	code, body := post(t, h.ServeV1, "/write?precision=s", fmt.Sprintf("edge v=1 %d\n", storage.MaxTime/1000), false)
	require.Equal(t, 204, code, body)
	require.Equal(t, []storage.Sample{{T: storage.MaxTime / 1000 * 1000, V: 1}}, st.Read(t, db, "default", math.MinInt64, math.MaxInt64, st.Eq("__name__", "edge_v"))[`{__name__="edge_v"}`])
}

func TestTCPAndUDPListeners(t *testing.T) {
	db := st.Open(t, nil)
	h := New(db, nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	go func() { _ = h.ServeTCP(ln, "default") }()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	defer pc.Close()
	go func() { _ = h.ServeUDP(pc, "iot") }() // the tenant it is given

	c, err := net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	_, err = c.Write([]byte("tcp_m,host=a v=1 1700000000000000000\ntcp_m,host=a v=2 1700000001000000000\nbad line\n"))
	require.NoError(t, err)
	require.NoError(t, c.Close())
	u, err := net.Dial("udp", pc.LocalAddr().String())
	require.NoError(t, err)
	_, err = u.Write([]byte("udp_m v=3 1700000000000000000\n"))
	require.NoError(t, err)
	u.Close()

	require.Eventually(t, func() bool {
		return len(st.Read(t, db, "default", 0, math.MaxInt64, st.Eq("__name__", "tcp_m_v"))[`{__name__="tcp_m_v", host="a"}`]) == 2 &&
			len(st.Read(t, db, "iot", 0, math.MaxInt64, st.Eq("__name__", "udp_m_v"))) == 1
	}, 5*time.Second, 50*time.Millisecond)

	// A long-lived connection sending a few lines now and then: each is
	// stored when the sender pauses, not when a batch of 1000 fills or the
	// connection ends. A line split across writes is kept whole.
	c, err = net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	defer c.Close()
	for i := range 3 {
		_, err = c.Write([]byte(fmt.Sprintf("slow_m,host=a v=%d %d\n", i, 1700000000000000000+int64(i)*1e9)))
		require.NoError(t, err)
		require.Eventually(t, func() bool {
			return len(st.Read(t, db, "default", 0, math.MaxInt64, st.Eq("__name__", "slow_m_v"))[`{__name__="slow_m_v", host="a"}`]) == i+1
		}, 5*time.Second, 20*time.Millisecond, "line %d stored while the connection stays open", i)
	}
	_, err = c.Write([]byte("slow_m,host=a v=9 17000000100"))
	require.NoError(t, err)
	time.Sleep(50 * time.Millisecond)
	_, err = c.Write([]byte("00000000\n" + "slow_m,host=a v=10 1700000011000000000\n" + strings.Repeat("x", 2<<20) + "\n"))
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		s := st.Read(t, db, "default", 0, math.MaxInt64, st.Eq("__name__", "slow_m_v"))[`{__name__="slow_m_v", host="a"}`]
		return len(s) == 5 && s[3].V == 9
	}, 5*time.Second, 20*time.Millisecond, "the split line is whole; the 2 MiB line is dropped")
}

// FuzzHandler: any body, at any precision, written in batches of 3
// samples, gets a 204 or a 4xx, and never more samples stored than the
// lines had fields.
func FuzzHandler(f *testing.F) {
	f.Add([]byte("cpu,host=a usage=1,idle=2i 1700000000000000000\nbad\nm f=1,g=2,h=3,i=4 1\n"), "s")
	f.Add([]byte("m f=1 9223372036854775807\n"), "h")
	db := st.Open(f, nil)
	h := New(db, &Options{BatchSamples: 3})
	f.Fuzz(func(t *testing.T, body []byte, precision string) {
		var ctx fasthttp.RequestCtx
		ctx.Request.Header.SetMethod("POST")
		ctx.Request.SetRequestURI("/write?precision=" + url.QueryEscape(precision))
		ctx.Request.SetBody(body)
		before := db.Stats().SamplesWritten
		h.ServeV1(&ctx)
		code := ctx.Response.StatusCode()
		if code != 204 && (code < 400 || code >= 500) {
			t.Fatalf("status %d: %s", code, ctx.Response.Body())
		}
		pts, _ := Parse(body)
		n := 0
		for _, p := range pts {
			n += len(p.Fields)
		}
		require.LessOrEqual(t, db.Stats().SamplesWritten-before, int64(n))
	})
}
