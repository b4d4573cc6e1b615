"""The supervised llama.cpp worker, the self-check fallback and checked parameter writes, on the real engine.

Failures are injected through the worker's test switches (environment variables the child reads at start, see
``profiler.engine.worker``), so the crash, the hang and the AMX fallback are real process deaths.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import llama_cpp
import psutil
import pytest

from profiler import runner
from profiler.engine import selfcheck, worker
from profiler.engine.llamacpp import mmap_params, set_params
from profiler.engine.worker import InProcessEngine, LlamaProxy, WorkerCrashed, call_in_worker, open_engine
from profiler.errors import EngineError
from profiler.record import RunRecord
from profiler.schema.model import ModelFile
from profiler.workload_prompts import exact_prompt


def _no_worker_left() -> bool:
    return not [p for p in psutil.Process().children(recursive=True)
                if "profiler.engine.worker" in " ".join(p.cmdline())]


def test_writing_a_parameter_the_bindings_lack_raises() -> None:
    params = llama_cpp.llama_model_default_params()
    with pytest.raises(EngineError, match="no field llama_model_params.no_such_field"):
        set_params(params, no_such_field=1)
    with pytest.raises(EngineError, match="cannot hold"):
        set_params(params, n_gpu_layers=2**40)  # a c_int32 would silently truncate it
    set_params(params, n_gpu_layers=3)
    assert params.n_gpu_layers == 3


def test_use_mmap_maps_to_a_field_the_installed_bindings_have() -> None:
    fields = {f[0] for f in llama_cpp.llama_model_params._fields_}
    for use_mmap in (True, False):
        values = mmap_params(llama_cpp.llama_model_params, use_mmap)
        assert set(values) <= fields
        params = llama_cpp.llama_model_default_params()
        set_params(params, **values)  # applied for real, not as a stray Python attribute

    class Bare(llama_cpp.ctypes.Structure):
        _fields_ = [("n_gpu_layers", llama_cpp.ctypes.c_int32)]

    with pytest.raises(EngineError, match="cannot apply use_mmap"):
        mmap_params(Bare, True)


def test_worker_and_in_process_engines_decode_the_same_tokens(default_model: ModelFile) -> None:
    settings = runner.default_settings()
    in_process = InProcessEngine()
    in_process.load(default_model.path, settings)
    try:
        with open_engine(default_model.path, settings) as supervised:
            timings = []
            for engine in (supervised, in_process):
                prompts = [exact_prompt(engine.tokenize, 16, s) for s in range(2)]
                timings.append(engine.run(prompts, 6))
    finally:
        in_process.close()
    for t in timings:
        assert t.generated_tokens == 12 and len(t.step_ends) == 5 and t.engine_decode
    assert timings[0].sample_text == timings[1].sample_text
    assert _no_worker_left()


def test_worker_killed_by_sigsegv_mid_point_exits_2_and_keeps_finished_points(tmp_path: Path) -> None:
    path = tmp_path / "crashed.json"
    env = {**os.environ, worker.SEGFAULT_AT_ENV: "2"}
    proc = subprocess.run(
        [sys.executable, "-m", "profiler", "run", "-p", "16", "-n", "4", "--parallel", "1,2,3", "-r", "1",
         "--idle-seconds", "0", "--record", str(path)],
        capture_output=True, text=True, timeout=300, env=env,
    )
    assert proc.returncode == 2, proc.stderr
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and "SIGSEGV" in errors[0] and "saved to" in errors[0]
    assert "Traceback" not in proc.stderr and "Segmentation fault" not in proc.stderr
    record = RunRecord.load(path)
    assert not record.complete
    assert [p.point.parallel for p in record.points] == [1]
    assert record.failed_point and record.failed_point.point.parallel == 2
    assert record.failed_point.signal == "SIGSEGV" and record.failed_point.phase == "repetition 1"
    assert "SIGSEGV" in record.failed_point.reason


def test_hung_worker_is_killed_at_the_time_limit_and_reported(default_model: ModelFile, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(worker.HANG_AT_ENV, "2")
    path = tmp_path / "hung.json"
    # the limit leaves the healthy first point room on a loaded machine (2 s was missed once under load 10)
    with pytest.raises(runner.RunFailed, match="time limit of 8 s") as info:
        runner.measure(default_model, runner.points_grid(8, 3, [1, 2]), runner.default_settings(repetitions=1),
                       options=runner.RunOptions(record_path=str(path), idle_seconds=0, point_timeout_s=8))
    assert info.value.path == path
    saved = RunRecord.load(path)
    assert [p.point.parallel for p in saved.points] == [1]
    assert saved.failed_point and saved.failed_point.point.parallel == 2 and "time limit" in saved.failed_point.reason
    assert _no_worker_left()


def test_interrupting_the_parent_stops_a_busy_worker(default_model: ModelFile,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(worker.HANG_AT_ENV, "1")
    engine = open_engine(default_model.path, runner.default_settings())
    pid = engine.pid

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGALRM, interrupt)
    try:
        signal.setitimer(signal.ITIMER_REAL, 1.0)
        with pytest.raises(KeyboardInterrupt):
            engine.run([exact_prompt(engine.tokenize, 8)], 3, point=1, phase="repetition 1")
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        engine.close()
    assert not psutil.pid_exists(pid)


def test_selfcheck_crash_turns_extra_buffer_types_off_once_and_is_recorded(
    default_model: ModelFile, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HFP_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv(selfcheck.FORCE_CRASH_ENV, "1")  # the self-check child segfaults with extra bufts on
    notices: list[str] = []
    verdict = selfcheck.check(notice=notices.append)
    assert not verdict.extra_bufts_ok and verdict.fallback_ok and verdict.signal == "SIGSEGV"
    assert len(notices) == 1 and "use_extra_bufts = false" in notices[0]
    assert selfcheck.check(notice=notices.append) == verdict and len(notices) == 1  # cached: said once
    assert list((tmp_path / "cache" / "selfcheck").glob("*.json"))

    record = runner.measure(
        default_model, runner.points_grid(8, 3, [1]), runner.default_settings(repetitions=1, warmup=False),
        options=runner.RunOptions(record_path=str(tmp_path / "r.json"), idle_seconds=0),
    )
    assert record.complete and record.settings.extra_bufts is False
    assert record.settings.extra_bufts_reason and "crashed" in record.settings.extra_bufts_reason
    assert RunRecord.load(tmp_path / "r.json").settings.extra_bufts is False


def test_selfcheck_module_exits_with_the_status_the_makefile_reads(tmp_path: Path) -> None:
    env = {**os.environ, "HFP_CACHE_DIR": str(tmp_path), worker.FORCE_SELFCHECK_CRASH_ENV: "1"}
    proc = subprocess.run([sys.executable, "-m", "profiler.engine.selfcheck"], capture_output=True, text=True,
                          timeout=300, env=env)
    amx_build = "AMX" in str(llama_cpp.llama_print_system_info())
    assert proc.returncode == (selfcheck.EXIT_AMX_CRASH if amx_build else selfcheck.EXIT_EXTRA_BUFTS_CRASH)
    assert proc.stdout.startswith("llama.cpp self-check: extra buffer types crash here")


def test_cpu_kernels_are_read_from_the_build_description() -> None:
    info = "CPU : SSE3 = 1 | AVX2 = 1 | AMX_INT8 = 1 | AVX512_BF16 = 0 | REPACK = 1 |"
    assert selfcheck.cpu_kernels(info) == ["SSE3", "AVX2", "AMX_INT8", "REPACK"]


def test_llama_in_a_worker_answers_chat_and_a_native_crash_there_is_an_engine_error(
    default_model: ModelFile,
) -> None:
    llm = LlamaProxy(model_path=str(default_model.path), n_ctx=256, verbose=False)
    try:
        out = llm.create_chat_completion(messages=[{"role": "user", "content": "Say hi."}], max_tokens=4,
                                         temperature=0.0)
        assert out["usage"]["completion_tokens"] >= 1 and isinstance(llm.chat_format, (str, type(None)))
    finally:
        llm.close()
    with pytest.raises(WorkerCrashed, match="died by SIGSEGV while reading address 8"):
        call_in_worker("ctypes:string_at", 8, 1, what="reading address 8")  # a real native segfault, in the child
    assert _no_worker_left()
