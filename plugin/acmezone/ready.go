package acmezone

// Ready implements ready.Readiness: ready once the informers have synced.
func (a *ACMEZone) Ready() bool { return a.store.synced() }
