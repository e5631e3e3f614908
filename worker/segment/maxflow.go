package segment

// flowGraph is a directed graph for a minimum s-t cut, solved with Dinic's
// algorithm (breadth-first levels, then blocking flows by depth-first
// search). The graphs the interactive segmenter builds have a node per
// region (a few thousand) and a few edges per node, where Dinic finishes in
// well under a millisecond; Boykov-Kolmogorov pays off only on pixel grids.
// Everything runs in the order nodes and edges were added, so the cut is
// deterministic.
type flowGraph struct {
	n     int
	head  []int32 // first edge of a node, -1 for none
	next  []int32 // next edge of the same node
	to    []int32
	cap   []float64 // residual capacity
	level []int32
	iter  []int32
	queue []int32
}

func newFlowGraph(n int) *flowGraph {
	g := &flowGraph{n: n, head: make([]int32, n), level: make([]int32, n), iter: make([]int32, n), queue: make([]int32, 0, n)}
	for i := range g.head {
		g.head[i] = -1
	}
	return g
}

// addEdge adds u→v with capacity c and v→u with capacity rc (one edge pair,
// so an undirected link is addEdge(u, v, c, c)).
func (g *flowGraph) addEdge(u, v int, c, rc float64) {
	g.to = append(g.to, int32(v), int32(u))
	g.cap = append(g.cap, c, rc)
	g.next = append(g.next, g.head[u], g.head[v])
	e := int32(len(g.to) - 2)
	g.head[u], g.head[v] = e, e+1
}

const flowEps = 1e-9

func (g *flowGraph) bfs(s, t int) bool {
	for i := range g.level {
		g.level[i] = -1
	}
	g.queue = append(g.queue[:0], int32(s))
	g.level[s] = 0
	for i := 0; i < len(g.queue); i++ {
		u := g.queue[i]
		for e := g.head[u]; e >= 0; e = g.next[e] {
			v := g.to[e]
			if g.cap[e] > flowEps && g.level[v] < 0 {
				g.level[v] = g.level[u] + 1
				g.queue = append(g.queue, v)
			}
		}
	}
	return g.level[t] >= 0
}

// dfs pushes up to f from u towards t along the level graph. It recurses
// at most the level of t deep, which on region graphs stays small.
func (g *flowGraph) dfs(u, t int32, f float64) float64 {
	if u == t {
		return f
	}
	for ; g.iter[u] >= 0; g.iter[u] = g.next[g.iter[u]] {
		e := g.iter[u]
		v := g.to[e]
		if g.cap[e] <= flowEps || g.level[v] != g.level[u]+1 {
			continue
		}
		if d := g.dfs(v, t, min(f, g.cap[e])); d > flowEps {
			g.cap[e] -= d
			g.cap[e^1] += d
			return d
		}
	}
	return 0
}

// maxFlow computes the maximum flow from s to t and returns it; source
// then reports each node's side of the minimum cut.
func (g *flowGraph) maxFlow(s, t int) float64 {
	var total float64
	for g.bfs(s, t) {
		copy(g.iter, g.head)
		for {
			f := g.dfs(int32(s), int32(t), inf)
			if f <= flowEps {
				break
			}
			total += f
		}
	}
	// Leave the levels of the last search: the nodes it reached are the
	// source side.
	g.bfs(s, t)
	return total
}

// source reports whether node u is on the source side of the minimum cut
// found by maxFlow.
func (g *flowGraph) source(u int) bool { return g.level[u] >= 0 }

const inf = 1e18
