#!/usr/bin/env python3
"""Builds tests/consumer/consumer.c every way a user would, and runs it.

usage: check-consumer.py BUILD_DIR SOURCE_DIR VERSION

- install: `meson install` of BUILD_DIR into a staging directory has the
  headers, both libraries, reseau.pc, reseau-static.pc, the CMake package and
  LICENSE; the shared library exports only rs_ symbols;
- pkg-config: `cc $(pkg-config --cflags --libs reseau)` links the shared
  library, `cc $(pkg-config --static --cflags --libs reseau-static)` the
  static one, with no flag added by hand;
- CMake: find_package(reseau CONFIG REQUIRED) and reseau::reseau, once for
  the shared and once (RESEAU_USE_STATIC_LIBS) for the static library;
- meson: the tree as a subproject, installed with its reference (man pages
  for every public function, read back with `man -M`), and a release
  tarball pulled through packaging/reseau.wrap with downloads disabled.
Each program must run; a shared build must need the shared library and a
static build must not. The staged .pc files get the staging prefix (the CMake
package finds its prefix itself). Platform differences: the shared library's
name and run-time search path (LD_LIBRARY_PATH, DYLD_LIBRARY_PATH, PATH), the
tool that lists exports and needed libraries (nm/readelf, nm/otool,
objdump/dumpbin). A step whose tool is missing is reported skipped with the
reason. The compiler is $CC (meson passes the one the library was built
with). Prints CMocka-style result lines for the scenario summary.
"""
import os
import re
import shlex
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from checklib import Skip, exit_status, run_step

BUILD, SOURCE, VERSION = Path(sys.argv[1]).resolve(), Path(sys.argv[2]).resolve(), sys.argv[3]
CONSUMER = SOURCE / "tests" / "consumer"
SYSTEM = sys.platform
WINDOWS = SYSTEM in ("win32", "cygwin", "msys")
DARWIN = SYSTEM == "darwin"
EXE = ".exe" if WINDOWS else ""
TIMEOUT = 600  # per command: a bound for a loaded machine, not an expectation
CC = shlex.split(os.environ.get("CC", "cc"))
MSVC = Path(CC[0]).stem.lower() in ("cl", "clang-cl")


def sh(*cmd, env=None, cwd=None):
    """Runs a command; its output is shown only if it fails."""
    out = subprocess.run([str(c) for c in cmd], env=env, cwd=cwd, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True, timeout=TIMEOUT)
    if out.returncode != 0:
        raise AssertionError(f"{' '.join(str(c) for c in cmd)}: exit {out.returncode}\n"
                             f"{out.stdout}")
    return out.stdout


def need(tool, why):
    path = shutil.which(tool)
    if not path:
        raise Skip(f"{tool} is not installed ({why})")
    return path


def destdir_join(root, prefix):
    """Where `meson install --destdir root` puts prefix (drive letter dropped)."""
    return Path(str(root) + os.path.splitdrive(prefix)[1])


def run_env(libdirs):
    """The environment a program needs to find shared libraries in libdirs."""
    env = dict(os.environ)
    var = "PATH" if WINDOWS else "DYLD_LIBRARY_PATH" if DARWIN else "LD_LIBRARY_PATH"
    env[var] = os.pathsep.join([str(d) for d in libdirs] + [env.get(var, "")])
    return env


def run_consumer(exe, libdirs=()):
    out = sh(exe, env=run_env(libdirs))
    if "task cancelled" not in out:
        raise AssertionError(f"{exe}: {out!r}")


def linked_libraries(exe):
    """The shared libraries exe names, or None without a tool to tell."""
    if DARWIN and shutil.which("otool"):
        return [line.split()[0] for line in sh("otool", "-L", exe).splitlines()[1:]
                if line.strip()]
    if WINDOWS:
        if shutil.which("objdump"):
            return re.findall(r"DLL Name: (\S+)", sh("objdump", "-p", exe))
        if shutil.which("dumpbin"):
            return re.findall(r"^\s+(\S+\.dll)\s*$", sh("dumpbin", "/nologo", "/dependents", exe),
                              re.M | re.I)
        return None
    if shutil.which("readelf"):
        return re.findall(r"\(NEEDED\).*\[(\S+)\]", sh("readelf", "-d", exe))
    return None


def check_linkage(exe, shared):
    libs = linked_libraries(exe)
    if libs is None:
        return  # the static program still ran without the library path
    ours = [lib for lib in libs if re.match(r"(lib)?reseau\b", Path(lib).name)]
    if shared and not ours:
        raise AssertionError(f"{exe} does not load the shared library: {libs}")
    if not shared and ours:
        raise AssertionError(f"{exe} loads a shared reseau: {libs}")


class Staged:
    """The installed tree, found once `install` has run."""
    root = None
    prefix = None
    pc_dir = None
    shared = None  # the shared library (the DLL on Windows)


def install():
    root = WORK / "root"
    sh("meson", "install", "-C", BUILD, "--no-rebuild", "--destdir", root, "--quiet")
    pcs = list(root.rglob("reseau.pc"))
    if len(pcs) != 1:
        raise AssertionError(f"reseau.pc installed {len(pcs)} times")
    prefix = re.search(r"^prefix=(.*)$", pcs[0].read_text(), re.M).group(1).strip()
    Staged.prefix = destdir_join(root, prefix)
    # The .pc files name the final prefix: point a copy at the staged one.
    Staged.pc_dir = WORK / "pkgconfig"
    Staged.pc_dir.mkdir()
    for name in ("reseau.pc", "reseau-static.pc"):
        text = (pcs[0].parent / name).read_text()
        text = re.sub(r"^prefix=.*$", "prefix=" + Staged.prefix.as_posix(), text, flags=re.M)
        (Staged.pc_dir / name).write_text(text)
    expected = ["include/reseau/reseau.h", "include/reseau/socket.h",
                "share/licenses/reseau/LICENSE"]
    for rel in expected:
        if not (Staged.prefix / rel).is_file():
            raise AssertionError(f"{rel} is not installed")
    # The static library (libreseau.a; not the import library libreseau.dll.a).
    for names in (["libreseau.a", "libreseau.lib"], ["reseauConfig.cmake"],
                  ["reseauConfigVersion.cmake"]):
        if not any(list(Staged.prefix.rglob(name)) for name in names):
            raise AssertionError(f"{' or '.join(names)} is not installed")
    if WINDOWS:
        shared = list(Staged.prefix.rglob("*reseau*.dll"))
    elif DARWIN:
        shared = [p for p in Staged.prefix.rglob("libreseau.*.dylib") if not p.is_symlink()]
    else:
        shared = [p for p in Staged.prefix.rglob("libreseau.so.*") if not p.is_symlink()]
    if len(shared) != 1:
        raise AssertionError(f"shared library: {shared}")
    Staged.shared = shared[0]
    Staged.root = root


def staged():
    if Staged.root is None:
        raise AssertionError("nothing installed (test_consumer_install_layout failed)")


def exported_symbols(lib):
    """The names lib exports, or Skip without a tool to list them."""
    if WINDOWS:
        if shutil.which("objdump"):
            text = sh("objdump", "-p", lib)
            table = text.split("[Ordinal/Name Pointer] Table", 1)
            if len(table) != 2:
                raise AssertionError(f"no export table in {lib}")
            names = []
            for line in table[1].splitlines()[1:]:
                m = re.match(r"^\s*\[\s*\d+\]\s+(\S+)", line)
                if not m:
                    break
                names.append(m.group(1))
            return names
        if shutil.which("dumpbin"):
            text = sh("dumpbin", "/nologo", "/exports", lib)
            return re.findall(r"^\s+\d+\s+[0-9A-F]+\s+[0-9A-F]{8}\s+(\S+)", text, re.M)
        raise Skip("neither objdump nor dumpbin is installed (export table)")
    need("nm", "export table")
    if DARWIN:
        out = sh("nm", "-gU", lib)
        return [line.split()[-1][1:] for line in out.splitlines() if line.split()]
    out = sh("nm", "-D", "--defined-only", lib)
    return [line.split()[2] for line in out.splitlines() if len(line.split()) == 3]


def exports():
    staged()
    names = exported_symbols(Staged.shared)
    foreign = sorted(set(names) - set(public_functions()))
    missing = sorted(set(public_functions()) - set(names))
    if foreign or missing:
        raise AssertionError(f"exports beyond the declared API: {foreign[:20]}; "
                             f"declared but not exported: {missing[:20]}")


def pkg_config(*args):
    env = dict(os.environ)
    env["PKG_CONFIG_PATH"] = os.pathsep.join([str(Staged.pc_dir),
                                              env.get("PKG_CONFIG_PATH", "")])
    return env, shlex.split(sh(need("pkg-config", "pkg-config files"), *args, env=env),
                            posix=not WINDOWS)


def compile_with_pkg_config(name, *query):
    staged()
    if MSVC:
        raise Skip("pkg-config link lines are for gcc-style compilers (MSVC: CMake, meson)")
    env, flags = pkg_config(*query)
    exe = WORK / (name + EXE)
    sh(*CC, "-std=c11", "-Wall", "-Wextra", "-Wpedantic", "-Werror",
       CONSUMER / "consumer.c", *flags, "-o", exe, env=env)
    return exe


def pkg_shared():
    exe = compile_with_pkg_config("consumer-shared", "--cflags", "--libs", "reseau")
    run_consumer(exe, [Staged.shared.parent])
    check_linkage(exe, shared=True)


def pkg_static():
    staged()
    # reseau.pc keeps what the library links with private: listed by
    # --static only (libevent_core and -pthread, or the Winsock libraries).
    _, plain = pkg_config("--libs", "reseau")
    _, static = pkg_config("--static", "--libs", "reseau")
    private = [flag for flag in static if flag not in plain]
    if not any(re.search(r"event_core|ws2_32", flag) for flag in private):
        raise AssertionError(f"reseau.pc: --libs {plain}, --static --libs {static}")
    exe = compile_with_pkg_config("consumer-static", "--static", "--cflags", "--libs",
                                  "reseau-static")
    run_consumer(exe)
    check_linkage(exe, shared=False)


def cmake_consumer(static):
    def step():
        staged()
        cmake = need("cmake", "the CMake consumer")
        src = WORK / "cmake-src"
        if not src.exists():
            src.mkdir()
            for f in ("CMakeLists.txt", "consumer.c"):
                shutil.copy(CONSUMER / f, src / f)
        out = WORK / ("cmake-static" if static else "cmake-shared")
        env = dict(os.environ)
        env["CC"] = " ".join(CC)
        sh(cmake, "-S", src, "-B", out, "-G", "Ninja", "-DCMAKE_BUILD_TYPE=Release",
           f"-DCMAKE_PREFIX_PATH={Staged.prefix.as_posix()}",
           f"-DRESEAU_USE_STATIC_LIBS={'ON' if static else 'OFF'}", env=env)
        sh(cmake, "--build", out, env=env)
        exe = out / ("consumer" + EXE)
        run_consumer(exe, [] if static else [Staged.shared.parent])
        check_linkage(exe, shared=not static)
    return step


def source_tree(dest):
    """A copy of the source tree without build directories or VCS data."""
    def ignore(directory, names):
        top = Path(directory) == SOURCE
        return [n for n in names if n in (".git", "__pycache__", "packagecache")
                or (top and n.startswith("build"))]
    shutil.copytree(SOURCE, dest, ignore=ignore, symlinks=True)


class Subproject:
    prefix = None


def meson_project(proj, build_file, *setup_args):
    shutil.copy(CONSUMER / "consumer.c", proj / "consumer.c")
    shutil.copy(CONSUMER / build_file, proj / "meson.build")
    build = proj / "build"
    # MSVC builds reseau with its own warning set, reported but not fatal.
    werror = ["-Dreseau:werror=false"] if MSVC else []
    sh("meson", "setup", build, proj, "--wrap-mode=nodownload", "--force-fallback-for=reseau",
       "-Dreseau:tests=false", "-Dreseau:examples=false", *werror, *setup_args)
    sh("ninja", "-C", build)
    run_consumer(build / ("consumer" + EXE))
    return build


def subproject():
    proj = WORK / "subproject"
    (proj / "subprojects").mkdir(parents=True)
    source_tree(proj / "subprojects" / "reseau")
    docs = ["-Dreseau:docs=true"] if shutil.which("doxygen") else []
    build = meson_project(proj, "meson.build.in", *docs)
    root = WORK / "subproject-root"
    sh("meson", "install", "-C", build, "--no-rebuild", "--destdir", root, "--quiet")
    # The default prefix differs per OS: find it from what was installed.
    headers = list(root.rglob("include/reseau/reseau.h"))
    if len(headers) != 1:
        raise AssertionError(f"the subproject installed reseau.h {len(headers)} times")
    Subproject.prefix = headers[0].parents[2]


def public_functions():
    """Every function the public headers declare with RS_API."""
    names = set()
    for header in (SOURCE / "api" / "reseau").glob("*.h"):
        text = header.read_text()
        names.update(re.findall(r"\bRS_API\b[^;{]*?\b(rs_\w+)\s*\(", text))
    if len(names) < 50:
        raise AssertionError(f"only {len(names)} public functions found in the headers")
    return sorted(names)


def man_pages():
    if not shutil.which("doxygen"):
        raise Skip("doxygen is not installed (the reference is not built)")
    if Subproject.prefix is None:
        raise AssertionError("nothing installed (test_consumer_meson_subproject failed)")
    mandir = Subproject.prefix / "share" / "man"
    functions = public_functions()
    missing = [f for f in functions if not (mandir / "man3" / (f + ".3")).is_file()]
    if missing:
        raise AssertionError(f"no man page for {missing}")
    if not (Subproject.prefix / "share" / "doc" / "reseau" / "html" / "index.html").is_file():
        raise AssertionError("the HTML reference is not installed")
    if WINDOWS or not shutil.which("man"):
        page = (mandir / "man3" / "rs_socket_connect.3").read_text()
        target = re.match(r"^\.so (\S+)", page)
        if target:
            page = (mandir / target.group(1)).read_text()
        if "rs_socket_connect" not in page:
            raise AssertionError("rs_socket_connect.3 does not describe rs_socket_connect")
        return
    env = dict(os.environ, MANPAGER="cat", PAGER="cat", MANWIDTH="80")
    out = sh("man", "-M", mandir, "rs_socket_connect", env=env)
    if "rs_socket_connect" not in out or "RS_ERROR_CONNECTION_REFUSED" not in out:
        raise AssertionError(f"man rs_socket_connect: {out[:400]!r}")


def wrap():
    proj = WORK / "wrap"
    cache = proj / "subprojects" / "packagecache"
    cache.mkdir(parents=True)
    # The release tarball as `meson dist` lays it out: one reseau-VERSION/ top.
    top = f"reseau-{VERSION}"
    tree = WORK / "dist" / top
    source_tree(tree)
    tarball = cache / f"{top}.tar.xz"
    with tarfile.open(tarball, "w:xz") as archive:
        archive.add(tree, arcname=top)
    sh(sys.executable, SOURCE / "packaging" / "make-wrap.py", tarball, tarball.as_uri(),
       proj / "subprojects" / "reseau.wrap")
    meson_project(proj, "wrap.meson.build.in")
    if not (proj / "subprojects" / top / "meson.build").is_file():
        raise AssertionError("the wrap did not unpack the tarball")


with tempfile.TemporaryDirectory(prefix="rs-consumer-", ignore_cleanup_errors=True) as tmp:
    WORK = Path(tmp)
    run_step("test_consumer_install_layout", install)
    run_step("test_consumer_exports_only_rs_api", exports)
    run_step("test_consumer_pkg_config_shared", pkg_shared)
    run_step("test_consumer_pkg_config_static", pkg_static)
    run_step("test_consumer_cmake_shared", cmake_consumer(static=False))
    run_step("test_consumer_cmake_static", cmake_consumer(static=True))
    run_step("test_consumer_meson_subproject", subproject)
    run_step("test_consumer_man_pages", man_pages)
    run_step("test_consumer_meson_wrap", wrap)
sys.exit(exit_status())
