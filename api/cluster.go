package api

import "net/http"

type clusterNode struct {
	NodeID    string `json:"node_id"`
	Role      string `json:"role"`
	Advertise string `json:"advertise,omitempty"`
	Self      bool   `json:"self"`
	Alive     bool   `json:"alive"`
	Streams   int    `json:"streams"`
	Clients   int    `json:"clients"`
}

type clusterLease struct {
	Key    string `json:"key"`
	NodeID string `json:"node_id"`
}

type standaloneCluster struct {
	Role   string         `json:"role"`
	Nodes  []clusterNode  `json:"nodes"`
	Leases []clusterLease `json:"leases"`
	Relays []any          `json:"relays"`
}

type clusterReply struct {
	Code    int    `json:"code"`
	Server  string `json:"server"`
	Cluster any    `json:"cluster"`
}

// handleCluster answers from Deps.Cluster when set; standalone, it describes this node only.
func (a *API) handleCluster(w http.ResponseWriter, r *http.Request) {
	if a.cluster != nil {
		v, err := a.cluster(r.Context())
		if err != nil {
			a.log.Warn("cluster view", "err", err)
			a.writeError(w, http.StatusServiceUnavailable, "cluster view: "+err.Error())
			return
		}
		a.writeJSON(w, http.StatusOK, clusterReply{Server: a.cfg.NodeID, Cluster: v})
		return
	}
	self := clusterNode{NodeID: a.cfg.NodeID, Role: a.cfg.Role, Advertise: a.cfg.Advertise, Self: true, Alive: true}
	view := standaloneCluster{Role: a.cfg.Role, Leases: []clusterLease{}, Relays: []any{}}
	for _, s := range a.streams() {
		if s == nil {
			continue
		}
		self.Streams++
		if s.Publisher() != nil {
			self.Clients++
			view.Leases = append(view.Leases, clusterLease{Key: s.Key(), NodeID: a.cfg.NodeID})
		}
		self.Clients += len(s.Subscribers())
	}
	view.Nodes = []clusterNode{self}
	a.writeJSON(w, http.StatusOK, clusterReply{Server: a.cfg.NodeID, Cluster: view})
}
