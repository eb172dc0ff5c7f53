"""The phases of one judgement, one module each (trusted side: all of this runs in the judge).

`judge.verify._Judgement` is assembled from them, in the order a verdict runs:

- `state`: what a judgement holds (options, input sets, findings, trials, phase times) and
  the few requests every phase makes (a reference request, staging a set in the candidate,
  comparing an output, an integrity report);
- `workers`: take a started pair from the pool or start one;
- `reference`: load the task, plan and make the input sets (secret seeds, references),
  the degenerate-task check;
- `candidate`: load the candidate (its import and build) and its first, unchecked call;
- `correctness`: relay each trial set to the candidate and compare every output;
- `timed`: calibrate, time the candidate, integrity and profile, then the baselines after
  the candidate's tree is gone, and the timed-output checks;
- `floors`: the roofline floors (bytes, FLOPs) and the kernel-profile findings.
"""
