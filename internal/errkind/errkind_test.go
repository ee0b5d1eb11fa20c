package errkind

import (
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestMark(t *testing.T) {
	kind := errors.New("x: invalid")
	cause := errors.New("disk")
	err := Mark(fmt.Errorf("limit of 3: %w", cause), kind)
	require.ErrorIs(t, err, kind)
	require.ErrorIs(t, err, cause)
	require.Equal(t, "limit of 3: disk", err.Error(), "the message is only the reason")
	require.NotErrorIs(t, Mark(cause, kind), errors.New("x: invalid"))
	require.NoError(t, Mark(nil, kind))
}
