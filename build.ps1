# Tandem's one entry point for PowerShell: ./build.ps1 [build|test|run|bench] [-Cuda]
# Kept in step with build.sh (same verbs, same steps). Not exercised by CI here (no Windows machine).
#
#   build  (default) native library (CMake, Release) and the .NET solution (Release)
#   test   build, then every test: native GoogleTest suites (ctest), then NUnit (dotnet test)
#   run    build, then the main job: the demo pair decoding together (R-Stitch), tokens coloured
#   bench  build, then the native CPU benchmark (random 125M-parameter Llama, 2 threads)
#   -Cuda  also build the CUDA backend (needs nvcc)
#
# Needs the .NET 10 SDK, a C++20 compiler, cmake >= 3.25, and GoogleTest, Google Benchmark and
# nlohmann-json where CMake can find them (e.g. vcpkg: vcpkg install gtest benchmark nlohmann-json,
# then set CMAKE_TOOLCHAIN_FILE).
[CmdletBinding()]
param(
    [Parameter(Position = 0)][ValidateSet('build', 'test', 'run', 'bench')][string]$Verb = 'build',
    [switch]$Cuda
)
$ErrorActionPreference = 'Stop'
$Root = $PSScriptRoot
$BuildDir = if ($env:TANDEM_BUILD_DIR) { $env:TANDEM_BUILD_DIR } else { Join-Path $Root 'build' }
$Jobs = [Environment]::ProcessorCount

function Say([string]$Message) { Write-Host "==> $Message" -ForegroundColor White }
function Die([string]$Message) { Write-Error "build.ps1: $Message"; exit 1 }
function Invoke-Checked([string]$Exe, [string[]]$Arguments) {
    & $Exe @Arguments
    if ($LASTEXITCODE -ne 0) { Die "$Exe $($Arguments -join ' ') failed with exit code $LASTEXITCODE" }
}

function Test-Tools {
    foreach ($tool in 'cmake', 'dotnet') {
        if (-not (Get-Command $tool -ErrorAction SilentlyContinue)) { Die "$tool not found" }
    }
    $cmakeVersion = [version]((cmake --version | Select-Object -First 1) -replace '[^0-9.]', '')
    if ($cmakeVersion -lt [version]'3.25') { Die "cmake $cmakeVersion is too old; 3.25 or newer is needed" }
    if (-not (dotnet --list-sdks | Where-Object { $_ -match '^10\.' })) { Die 'the .NET 10 SDK is needed' }
}

function Build-All {
    Test-Tools
    $cudaFlag = if ($Cuda) { '-DTANDEM_CUDA=ON' } else { '-DTANDEM_CUDA=OFF' }
    Say "configuring native build in $BuildDir ($cudaFlag)"
    Invoke-Checked cmake @('-S', $Root, '-B', $BuildDir, '-DCMAKE_BUILD_TYPE=Release', $cudaFlag)
    Say 'building native code'
    Invoke-Checked cmake @('--build', $BuildDir, '--config', 'Release', '-j', "$Jobs")
    Say 'restoring and building the .NET solution'
    Invoke-Checked dotnet @('build', (Join-Path $Root 'Interop.sln'), '-c', 'Release', '-nologo', '-v', 'q')
}

switch ($Verb) {
    'build' { Build-All }
    'test' {
        Build-All
        Say 'native tests (ctest)'
        Invoke-Checked ctest @('--test-dir', $BuildDir, '-C', 'Release', '--output-on-failure', '-j', "$Jobs")
        Say 'managed tests (dotnet test)'
        Invoke-Checked dotnet @('test', (Join-Path $Root 'tests/Tandem.Tests'), '-c', 'Release', '--no-build', '-nologo')
    }
    'run' {
        Build-All
        $Demo = Join-Path $Root 'models/demo'
        if (-not ((Test-Path (Join-Path $Demo 'small/config.json')) -and (Test-Path (Join-Path $Demo 'large/config.json')))) {
            Die "the demo pair ($Demo/small, $Demo/large) is missing from this checkout"
        }
        # The shipped demo pair on the CPU with R-Stitch: colour = uncertainty, bold underlined = the large model.
        Say 'tandem generate: the demo pair with R-Stitch on the CPU (models/demo, see its README.md)'
        Invoke-Checked dotnet @('run', '--project', (Join-Path $Root 'src/Tandem.Cli'), '-c', 'Release', '--no-build', '--',
            'generate', '--small', (Join-Path $Demo 'small'), '--large', (Join-Path $Demo 'large'), '--mode', 'rstitch', '--threshold', '0.005',
            '--device', 'cpu', '--prompt', '48213+9875-3906=', '--max-tokens', '320', '--temperature', '0',
            '--show-uncertainty', '--verbose')
    }
    'bench' {
        Build-All
        Say 'native CPU benchmark'
        $bench = Get-ChildItem -Path $BuildDir -Recurse -Filter 'tandem_model_bench*' | Where-Object { -not $_.PSIsContainer } | Select-Object -First 1
        if (-not $bench) { Die 'tandem_model_bench was not built' }
        Invoke-Checked $bench.FullName @('--threads', '2', '--dir', (Join-Path $BuildDir 'bench-models'))
    }
}
