package server

import "errors"

var errRedisPending = errors.New("the Redis backend is not wired yet")
