"""Benchmarks of RADAR's orchestration: `python -m bench` (or `make bench`).

Figures, not timed tests: each benchmark prints what it measured and writes it to
`bench/results.json`. LLM calls go through the real `langchain-openai` client to
the fault-free fake OpenAI server of the tests (tests/fakes/openai_server.py) on
127.0.0.1, which injects a fixed latency per request; no other network is used.

1. critical path   one decision at 2 rounds, 150 ms per LLM call: wall / (critical-path calls x 150 ms)
2. concurrency     50 decisions at once in one process (ainvoke, async SQLite): wall / one decision's wall
3. overhead        200 decisions on a zero-latency stub model: median ms with SQLite, InMemorySaver, none
4. checkpoints     bytes written per decision at 1, 2, 3 and 5 rounds, against the final state's size
5. re-run cost     the same brief twice with the LLM cache on, the second in another process: new requests
"""
