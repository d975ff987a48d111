"""The synthetic world: a data source standing in for real multi-network exports.

- `config`      WorldConfig: params.yaml knobs plus behaviour constants (frozen)
- `networks`    per-network behaviour (popularity, activity, audiences, reaction mix)
- `population`  people, hidden traits, accounts, in-world follow graph, pods (pure)
- `engine`      one simulated day, vectorised (pure: world, state, day, rng -> rows, state)
- `frames`      engine arrays -> raw tables shaped by features.raw_schema
- `corrupt`     rows broken like a bad export (share simulate.corrupt_share)
- `truth`       hidden truth tables and their pandera models (evaluation only)
- `world`       build, iterate days, write everything atomically (the only I/O)
- `realism`     simulated Twitter accounts vs the real PeerIndex sample
- `cli`         `influence simulate`, `influence realism`
"""
