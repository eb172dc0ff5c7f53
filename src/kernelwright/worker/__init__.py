"""Code that runs inside a sandboxed worker process: in the candidate role, next to the adversary.

Every module here is imported by a worker (`python -m kernelwright.worker.entry ROLE ...`,
spawned by `sandbox.process`), never by the judge:

- `entry`: reads the channel secret, hardens the process, serves requests until told to exit;
- `common`: what both roles serve (setup, stage, time, touch, fetch, integrity);
- `candidate`: the candidate role (imports and runs `ModelNew`; compromised from its load on);
- `reference`: the reference role (runs the task's `Model`; trusted, it never imports the
  candidate);
- `harness`: staged inputs, the timing loop, memory poisoning, profiling, the integrity
  snapshot;
- `inputs`: input sets from the task's `get_inputs` under a seed the judge sends;
- `ceilings`: the device's copy bandwidth and matmul rate (measured in the reference worker).

Besides these, a worker runs `kernelwright.protocol`, `kernelwright.constants` and the
sandbox modules the request loop needs (`sandbox.channel`, `sandbox.codec`, `sandbox.limits`,
`sandbox.pch`). It imports nothing of `kernelwright.judge` (tests/worker/test_boundary.py):
in the candidate's process, whatever this code computes is only a claim the judge checks.
"""
