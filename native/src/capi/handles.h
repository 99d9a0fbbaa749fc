// What the opaque handles of tandem.h are: thin boxes around the C++ objects.
#pragma once

#include <memory>
#include <vector>

#include "decode/sampler.h"
#include "model/model.h"
#include "model/session.h"

struct tdm_model {
    std::shared_ptr<const tdm::Model> model;
    std::vector<int32_t> eos_ids;  // backing store for tdm_model_info.eos_token_ids
};

struct tdm_session {
    std::unique_ptr<tdm::Session> session;
};

struct tdm_sampler {
    std::unique_ptr<tdm::Sampler> sampler;
};
