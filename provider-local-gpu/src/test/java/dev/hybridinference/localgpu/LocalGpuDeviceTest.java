package dev.hybridinference.localgpu;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.hybridinference.core.ChatRequest;
import dev.hybridinference.core.ChatResponse;
import dev.hybridinference.core.ConfigurationException;
import dev.hybridinference.core.InferenceClient;
import dev.hybridinference.core.InferenceClients;
import dev.hybridinference.localgpu.internal.NativeEngineException;
import dev.hybridinference.localgpu.internal.NativeModel;
import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Choosing the device: the names {@code device} accepts, what the runtime reports about CUDA devices, and
 * what {@code auto} and a missing {@code cuda:N} do. Runs everywhere; the parts about a machine without a
 * usable CUDA device skip, with the reason, where there is one.
 */
@Timeout(120)
class LocalGpuDeviceTest {
    static Path model;

    @BeforeAll
    static void fixture() throws IOException {
        assumeTrue(LocalRuntime.isAvailable(), "native runtime unavailable");
        model = Fixtures.file("tiny-f32.gguf");
    }

    private static LocalGpuClient.Builder builder(String device) {
        return LocalGpuClient.builder()
                .modelPath(model)
                .device(device)
                .threads(1)
                .contextSize(64);
    }

    @Test
    void theRuntimeListsItsCudaDevicesOrSaysWhyThereAreNone() {
        List<CudaDevice> devices = LocalRuntime.cudaDevices();
        assertThat(LocalRuntime.cudaUnavailableReason().isPresent()).isEqualTo(devices.isEmpty());
        LocalRuntime.cudaUnavailableReason()
                .ifPresent(reason -> assertThat(reason).isNotBlank());
        for (int i = 0; i < devices.size(); i++) {
            CudaDevice d = devices.get(i);
            assertThat(d.index()).isEqualTo(i);
            assertThat(d.name()).isNotBlank();
            assertThat(d.totalBytes()).isPositive();
            assertThat(d.freeBytes()).isBetween(0L, d.totalBytes());
            assertThat(d.label()).isEqualTo("cuda:" + i + " " + d.name());
        }
    }

    @Test
    void deviceNamesAreParsed() {
        assertThat(LocalGpuClient.resolveDevice("cpu")).isEqualTo(NativeModel.CPU);
        assertThat(LocalGpuClient.resolveDevice("auto"))
                .isEqualTo(LocalRuntime.cudaDevices().isEmpty() ? NativeModel.CPU : 0);
        for (String bad : List.of("gpu", "cuda:", "cuda:-1", "cuda:x", "CPU", "cuda:0 ", "cuda:12345678901")) {
            assertThatThrownBy(() -> LocalGpuClient.resolveDevice(bad))
                    .isInstanceOf(IllegalArgumentException.class)
                    .hasMessage("device must be auto, cpu or cuda:N, got " + bad);
        }
    }

    @Test
    void aMissingCudaDeviceIsRefusedNamingTheDevicesSeen() {
        List<CudaDevice> devices = LocalRuntime.cudaDevices();
        String missing = "cuda:" + devices.size();
        String seen = devices.isEmpty()
                ? "none (" + LocalRuntime.cudaUnavailableReason().orElseThrow() + ")"
                : String.join(", ", devices.stream().map(CudaDevice::label).toList());
        assertThatThrownBy(() -> builder(missing).build())
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("device " + missing + ": no such CUDA device; devices seen: " + seen + "; use auto or cpu");
        if (devices.isEmpty()) {
            assertThatThrownBy(() -> builder("cuda").build())
                    .hasMessageStartingWith("device cuda: no such CUDA device; devices seen: none (");
        }
        assertThatThrownBy(() -> InferenceClients.loader()
                        .env(Map.of())
                        .load("providers:\n  local: {type: local-gpu, modelPath: \"" + model + "\", device: \""
                                + missing + "\"}\n"))
                .isInstanceOf(ConfigurationException.class)
                .hasMessage("providers.local.device: device " + missing + ": no such CUDA device; devices seen: " + seen
                        + "; use auto or cpu");
    }

    @Test
    void autoFallsBackToTheCpuWithoutACudaDeviceAndReceiptsSaySo() {
        assumeTrue(
                LocalRuntime.cudaDevices().isEmpty(), "this machine has a CUDA device; the GPU tests cover auto there");
        try (LocalGpuClient c = builder("auto").build()) {
            assertThat(c.backend()).isEqualTo("cpu");
            assertThat(c.device()).isEqualTo("cpu");
            ChatResponse r =
                    c.chat(ChatRequest.builder().user("Hello").maxTokens(2).build());
            assertThat(r.receipt().attributes()).containsEntry("device", "cpu").containsEntry("backend", "cpu");
            assertThat(c.info().attributes()).containsEntry("device", "cpu").containsEntry("backend", "cpu");
        }
        try (InferenceClient c = InferenceClients.fromConfig("providers:\n  local: {type: local-gpu, modelPath: \""
                + model + "\", device: cpu, threads: 1, contextSize: 64}\n")) {
            assertThat(
                            c.info().members().isEmpty()
                                    ? c.info().attributes()
                                    : c.info().members().get(0).attributes())
                    .containsEntry("device", "cpu");
        }
    }

    @Test
    void loadingOnACudaDeviceThatIsNotThereIsADeviceError() {
        assumeTrue(LocalRuntime.cudaDevices().isEmpty(), "this machine has a CUDA device");
        assertThatThrownBy(() -> NativeModel.load(model, 1, Precision.FAST, 0))
                .isInstanceOf(NativeEngineException.class)
                .hasMessageStartingWith("cuda:0")
                .satisfies(e -> assertThat(((NativeEngineException) e).kind())
                        .isEqualTo(NativeEngineException.Kind.DEVICE_FAILED));
        // The CPU backend is untouched by it.
        try (NativeModel m = NativeModel.load(model, 1, Precision.FAST, NativeModel.CPU)) {
            assertThat(m.backend()).isEqualTo("cpu");
            assertThat(m.device()).isEqualTo("cpu");
        }
    }
}
