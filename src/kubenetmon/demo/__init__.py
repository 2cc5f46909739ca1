"""The whole system on a lab in network namespaces, and how well it meters: `kubenetmon demo` and the
end-to-end tests share all of it.

    with Lab(Topology.demo()) as lab, MeteredLab(lab, workdir) as system:
        system.start()                                   # certificates, server, one agent per node
        lab.reset_ground_truth()
        TrafficRun(lab, demo_mix(lab.topology, 20), 20, on_step).run()
        verdict = system.verdict(system.drain())         # stored bytes against the nftables truth

Modules: `inventory` (static inventory and cloud range file from a topology), `processes` (daemon child
processes), `system` (`MeteredLab`: the daemons on a lab), `scenario` (the traffic mix and its runner),
`observed` (stored bytes and truth bytes per flow direction), `accuracy` (the comparison), `summary`
(accuracy line and JSON), `run` (the demo's phases), `display` (its rich progress).
"""
