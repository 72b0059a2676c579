package dev.hybridinference.examples.demo;

import dev.hybridinference.localgpu.DemoModels;
import dev.hybridinference.testkit.OpenAiCompatibleServer;
import dev.hybridinference.testkit.azure.AzureEmulator;
import dev.hybridinference.testkit.cloudrun.CloudRunEmulator;
import dev.hybridinference.testkit.cloudrun.GoogleTokenServer;
import dev.hybridinference.testkit.sagemaker.SageMakerEmulator;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

/**
 * The deployments the demo routes between, each an emulator of the platform's real protocol on loopback, and
 * the environment that points {@code hybrid-demo.yaml} at them. Closing it stops them all.
 */
final class DemoBackends implements AutoCloseable {
    static final String MODEL = "llama-3.1-8b-instruct";
    static final String AZURE_DEPLOYMENT = "llama-3.3-70b-instruct";
    static final String AZURE_KEY = "demo-api-key";

    private final List<AutoCloseable> started = new ArrayList<>();
    private final Map<String, String> env = new LinkedHashMap<>();
    private OpenAiCompatibleServer vllm;
    private AzureEmulator azure;

    private DemoBackends() {}

    /**
     * Starts every backend and writes what the configuration reads from files (the service account key, the
     * Azure endpoint's certificate, the local model) into {@code dir}. They start side by side: making keys and
     * certificates and writing the model take most of the time.
     */
    static DemoBackends start(HybridDemo.Settings s, Path dir, PrintStream out) {
        DemoBackends b = new DemoBackends();
        ExecutorService pool = Executors.newFixedThreadPool(4);
        try {
            Future<Path> model = pool.submit(() -> DemoModels.writeRandomModel(dir));
            Future<CloudRunEmulator> cloudRun = pool.submit(() -> {
                GoogleTokenServer tokens = b.add(GoogleTokenServer.start(0));
                Path key = dir.resolve("cloud-run-invoker.json");
                Files.writeString(
                        key, tokens.serviceAccountKeyJson("demo-invoker@demo-project.iam.gserviceaccount.com"));
                b.put("CLOUD_RUN_KEY", key.toString());
                return b.add(CloudRunEmulator.builder()
                        .model(MODEL)
                        .requireIdToken(tokens)
                        .coldStart(s.coldStart())
                        .idleTimeout(s.idle())
                        .minInstances(0)
                        .maxInstances(2)
                        .concurrency(4)
                        .tokenLatency(s.serverlessTokenLatency())
                        .seed(3)
                        .start());
            });
            Future<AzureEmulator> azure = pool.submit(() -> b.add(AzureEmulator.builder()
                    .apiKey(AZURE_KEY)
                    .deployment(AZURE_DEPLOYMENT)
                    .contextWindow(131_072)
                    .tokenLatency(s.azureTokenLatency())
                    .seed(4)
                    .start()));
            b.vllm = b.add(OpenAiCompatibleServer.builder()
                    .model(MODEL)
                    .maxConcurrent(4)
                    .whenFull(OpenAiCompatibleServer.Overflow.REJECT)
                    .tokenLatency(s.vllmTokenLatency())
                    .seed(1)
                    .start());
            SageMakerEmulator sagemaker = b.add(SageMakerEmulator.builder()
                    .endpointName("llama-3-1-8b-serverless")
                    .tokenLatency(s.serverlessTokenLatency())
                    .coldStart(s.coldStart(), SageMakerEmulator.ColdStartMode.HOLD)
                    .startCold(true)
                    .idleTimeout(s.idle())
                    .maxConcurrency(4, false)
                    .seed(2)
                    .start());
            b.azure = azure.get();
            CloudRunEmulator run = cloudRun.get();

            b.put("VLLM_URL", b.vllm.baseUrl());
            b.put("SAGEMAKER_URL", sagemaker.endpoint().toString());
            b.put("CLOUD_RUN_URL", run.url());
            b.put("AZURE_URL", b.azure.openAiV1Url());
            b.put("AZURE_API_KEY", AZURE_KEY);
            b.put("AZURE_CA", b.azure.writeCertificatePem(dir).toString());
            b.put("LOCAL_MODEL", model.get().toString());
            b.put("SERVERLESS_IDLE", s.idle().toMillis() + "ms");
            b.put("COLD_START", s.coldStart().toMillis() + "ms");

            out.println("  vllm       always-on vLLM server, 4 requests at once (429 beyond), $1.80/hour       "
                    + b.vllm.baseUrl());
            out.println("  sagemaker  SageMaker Serverless endpoint, to zero after "
                    + s.idle().toMillis() + " ms idle, cold start "
                    + s.coldStart().toMillis() + " ms  " + sagemaker.endpoint());
            out.println("  cloudrun   Cloud Run GPU service, min instances 0, 2 x 4 requests, ID tokens        "
                    + run.url());
            out.println("  azure      Azure AI serverless deployment, HTTPS, per token, 128k context      "
                    + b.azure.openAiV1Url());
            return b;
        } catch (ExecutionException e) {
            b.close();
            Throwable cause = e.getCause();
            if (cause instanceof RuntimeException) {
                throw (RuntimeException) cause;
            }
            throw new IllegalStateException("cannot start the demo's backends: " + cause, cause);
        } catch (InterruptedException e) {
            b.close();
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted while starting the demo's backends", e);
        } catch (RuntimeException e) {
            b.close();
            throw e;
        } finally {
            pool.shutdownNow();
        }
    }

    private synchronized void put(String name, String value) {
        env.put(name, value);
    }

    private synchronized <T extends AutoCloseable> T add(T backend) {
        started.add(backend);
        return backend;
    }

    /** The variables {@code hybrid-demo.yaml} reads. */
    synchronized Map<String, String> environment() {
        return Map.copyOf(env);
    }

    OpenAiCompatibleServer vllm() {
        return vllm;
    }

    AzureEmulator azure() {
        return azure;
    }

    @Override
    public synchronized void close() {
        for (int i = started.size() - 1; i >= 0; i--) {
            try {
                started.get(i).close();
            } catch (Exception ignored) {
                // Stopping the others matters more.
            }
        }
        started.clear();
    }
}
