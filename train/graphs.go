package train

import (
	"github.com/calft/calft/bindings/ggml"
	"github.com/calft/calft/cal"
	"github.com/calft/calft/llava"
)

// Rows and scored rows are rounded up to these multiples, so that batches of similar
// size share one built graph; at most maxGraphs are kept.
const (
	rowBucket    = 32
	scoredBucket = 16
	maxGraphs    = 6
)

func roundUp(n, m int) int { return (n + m - 1) / m * m }

// graphCache keeps the few most recently used step graphs of a decoder (their
// structure only: their values share one compute buffer).
type graphCache struct {
	be     *ggml.Backend
	dec    *llava.Decoder
	opt    *Optimizer // nil: forward-only graphs (scoring)
	co     cal.Options
	alloc  *Allocator
	graphs map[Shape]*StepGraph
	lru    []Shape
	// recomputing is the one recomputing step kept: its checkpoints are the largest
	// part of its memory, so a step of another shape replaces it.
	recomputing *recompute
	retain      retention // what a recomputing step keeps beyond the blocks' inputs
}

func newGraphCache(be *ggml.Backend, dec *llava.Decoder, opt *Optimizer, co cal.Options) *graphCache {
	return &graphCache{be: be, dec: dec, opt: opt, co: co, alloc: NewAllocator(be), graphs: map[Shape]*StepGraph{}}
}

// get returns the built graph of a shape, building it (and dropping the least recently
// used one) when needed.
func (c *graphCache) get(sh Shape) (*StepGraph, error) {
	if g, ok := c.graphs[sh]; ok {
		for i, s := range c.lru {
			if s == sh {
				c.lru = append(c.lru[:i], c.lru[i+1:]...)
				break
			}
		}
		c.lru = append(c.lru, sh)
		return g, nil
	}
	if len(c.lru) >= maxGraphs {
		old := c.lru[0]
		c.lru = c.lru[1:]
		c.graphs[old].Close()
		delete(c.graphs, old)
	}
	opt := c.opt
	if !sh.Backward {
		opt = nil
	}
	g, err := NewStepGraph(c.be, c.dec, opt, sh, c.co, c.alloc)
	if err != nil {
		return nil, err
	}
	c.graphs[sh] = g
	c.lru = append(c.lru, sh)
	return g, nil
}

// getRecompute returns the recomputing step of a shape, building it (in place of the
// one kept) when needed.
func (c *graphCache) getRecompute(sh Shape) (*recompute, error) {
	if r := c.recomputing; r != nil && r.Shape == sh {
		return r, nil
	}
	if c.recomputing != nil {
		c.recomputing.close()
		c.recomputing = nil
	}
	r, err := newRecompute(c.be, c.dec, c.opt, sh, c.co, c.alloc, c.retain)
	if err != nil {
		return nil, err
	}
	c.recomputing = r
	return r, nil
}

func (c *graphCache) close() {
	if c.recomputing != nil {
		c.recomputing.close()
	}
	for _, g := range c.graphs {
		g.Close()
	}
	c.graphs = nil
	c.alloc.Close()
}
