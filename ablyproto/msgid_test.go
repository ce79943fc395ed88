package ablyproto

import (
	"strings"
	"testing"
)

func TestValidMessageIDs(t *testing.T) {
	t.Parallel()
	for ids, want := range map[string]bool{
		"":            true,
		"x":           true, // one message: any id
		",":           true, // no ids
		"b:0,b:1,b:2": true,
		"x,x,x":       false, // RSL1k3: the same id thrice
		"b:0,":        false, // one without
		",b:1":        false,
		"b:0,c:1":     false, // two bases
		"b:1,b:2":     false, // not their positions
		"b:0,b:01":    false,
		":0,:1":       false, // empty base
		"a:b:0,a:b:1": true,  // the base is up to the last ':'
		"a:b:0,a:c:1": false,
	} {
		if got := ValidMessageIDs(strings.Split(ids, ",")); got != want {
			t.Errorf("ValidMessageIDs(%q) = %v, want %v", ids, got, want)
		}
	}
}
