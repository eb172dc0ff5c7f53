import importlib.util, sys, time, torch
TASKS = ["elementwise", "softmax", "layernorm", "rowsum", "matmul_epilogue"]
FORM = sys.argv[1] if len(sys.argv) > 1 else "cpu_cpp"
dev = sys.argv[2] if len(sys.argv) > 2 else "cpu"
only = sys.argv[3:] 
root = "examples"

def load(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m); return m

def dists(x, d):
    return {"task": x, "shifted": x + 3.0, "scaled": x * 16.0, "positive": x.abs() + 0.1}[d]

worst = {}
ok_all = True
for t in (only or TASKS):
    task = load(f"{root}/{t}/task.py", f"task_{t}")
    t0 = time.time()
    cand = load(f"{root}/{t}/{FORM}.py", f"cand_{t}_{FORM}")
    build = time.time() - t0
    variants = [None, {"batch_size": 3}, {"batch_size": 1}]
    if t in ("elementwise", "softmax", "rowsum"):
        variants += [{"batch_size": 5, "dim": 7}, {"batch_size": 2, "dim": 1}, {"batch_size": 4, "dim": 5000}]
    if t == "matmul_epilogue":
        variants += [{"batch_size": 65}, {"batch_size": 64}]
    for seed in (0, 1):
        torch.manual_seed(seed)
        model = task.Model(*task.get_init_inputs())
        torch.manual_seed(seed + 100)
        new = cand.ModelNew(*task.get_init_inputs())
        new.load_state_dict(model.state_dict())
        assert set(new.state_dict()) == set(model.state_dict())
        model_d = task.Model(*task.get_init_inputs()); model_d.load_state_dict(model.state_dict()); model_d = model_d.double()
        model = model.to(dev); new = new.to(dev)
        for var in variants:
            saved = {k: getattr(task, k) for k in (var or {})}
            for k, v in (var or {}).items(): setattr(task, k, v)
            torch.manual_seed(seed + 7)
            inputs = task.get_inputs()
            for k, v in saved.items(): setattr(task, k, v)
            for d in ("task", "shifted", "scaled", "positive"):
                xs = [dists(x, d) for x in inputs]
                with torch.no_grad():
                    ref64 = model_d(*[x.double() for x in xs])
                    ref32 = model(*[x.to(dev) for x in xs]).cpu()
                    out = new(*[x.to(dev) for x in xs])
                    out2 = new(*[x.to(dev) for x in xs])
                if dev == "cuda": torch.cuda.synchronize()
                out = out.cpu(); out2 = out2.cpu()
                assert out.shape == ref64.shape and out.dtype == torch.float32, (out.shape, ref64.shape, out.dtype)
                assert torch.equal(out, out2) or t == "matmul_epilogue"
                rms = ref64.pow(2).mean().sqrt().item()
                e_new = (out.double() - ref64).abs().max().item() / rms
                e_ref = (ref32.double() - ref64).abs().max().item() / rms
                key = (t, str(var), d)
                judge_ok = bool(((out.double() - ref64).abs() <= 1e-4 * rms + 1e-4 * ref64.abs()).all())
                ok = judge_ok and torch.isfinite(out).all().item() and (e_new < 1e-5 or e_new <= 2 * e_ref)
                ok_all &= ok
                worst[t] = max(worst.get(t, 0), e_new)
                if not ok or (var is None and seed == 0):
                    print(f"{'OK ' if ok else 'BAD'} {t:16s} seed={seed} var={var} dist={d:8s} cand_err/rms={e_new:.2e} torch32_err/rms={e_ref:.2e}")
    if dev == "cuda":
        torch.manual_seed(0); xs = [x.cuda() for x in task.get_inputs()]
        def bench(f):
            for _ in range(5): f(*xs)
            st, en = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            torch.cuda.synchronize(); st.record()
            for _ in range(50): f(*xs)
            en.record(); torch.cuda.synchronize(); return st.elapsed_time(en) / 50 * 1000
        with torch.no_grad():
            print(f"   timing {t} {FORM}: candidate {bench(new):.1f} us, torch eager {bench(model):.1f} us")
    print(f"== {t}: form={FORM} dev={dev} import/build {build:.1f}s, worst cand err/rms {worst[t]:.2e}", flush=True)
print("ALL OK" if ok_all else "SOME FAILED")
