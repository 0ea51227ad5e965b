// Package cascade is Estuary's cluster registry: which node publishes which stream, and which nodes are
// alive. It has two implementations with the same semantics: an in-process one for standalone nodes
// (NewMemory) and one on Redis for origin/edge clusters (NewRedis).
//
// A publish takes a stream lease, key "estuary:stream:{app}/{stream}", holding a JSON Record
// {key, node_id, relay_url, owner_token, started_at}. It is taken with SET NX PX (TTL 6 s), refreshed every
// 2 s by its owner only and released only by its owner, both through compare-and-set scripts comparing
// owner_token. Each node keeps "estuary:node:{node_id}" -> {node_id, role, advertise, started_at} alive
// with a short TTL (cluster.node_ttl, default 3 s), refreshed every third of it. A lease held by a node
// whose node record is gone is taken over at once (compare-and-set against the old record); one held by a
// live node is refused with an error wrapping sfu.ErrPublisherExists that names the holder, or, with
// Config.Takeover, overwritten: the old owner's next refresh fails and its Lease reports "lost".
//
// Stream starts and stops are published on "estuary:events" so waiting nodes react at once (WaitFor).
//
// A Redis outage never stops a live stream: failed refreshes are counted and logged (rate-limited), the
// lease is kept in memory and re-taken within one refresh period once Redis answers again.
package cascade
