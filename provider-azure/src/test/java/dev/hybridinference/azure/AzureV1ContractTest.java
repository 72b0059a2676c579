package dev.hybridinference.azure;

/** The provider contract on the OpenAI-compatible v1 route. */
class AzureV1ContractTest extends AzureContract {
    @Override
    AzureClient.Api api() {
        return AzureClient.Api.OPENAI_V1;
    }

    @Override
    String endpoint() {
        return emulator.openAiV1Url();
    }

    @Override
    protected String providerId() {
        return "azure-v1-contract";
    }
}
