package shim

// ChainOf exposes, to tests only, the delegation chain an agent holds in an execution.
func ChainOf(a *Agent, ex *Execution) []string { return a.chain(ex.ID()) }
