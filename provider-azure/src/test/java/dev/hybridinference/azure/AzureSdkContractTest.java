package dev.hybridinference.azure;

/** The provider contract on the azure-ai-inference SDK route. */
class AzureSdkContractTest extends AzureContract {
    @Override
    AzureClient.Api api() {
        return AzureClient.Api.INFERENCE_SDK;
    }

    @Override
    String endpoint() {
        return emulator.inferenceUrl();
    }

    @Override
    protected String providerId() {
        return "azure-sdk-contract";
    }
}
