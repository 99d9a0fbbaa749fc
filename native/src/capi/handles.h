// What the opaque handles of tandem.h are: thin boxes around the C++ objects.
#pragma once

#include <memory>
#include <vector>

#include "decode/pair_decoder.h"
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

struct tdm_pair {
    std::unique_ptr<tdm::PairDecoder> decoder;
    // What tdm_pair_session hands out: boxes that point at the pair's own sessions without owning
    // them. They release (never delete) their pointer when the pair goes; the decoder frees them.
    tdm_session views[2];
    std::vector<tdm_token_record> records;  // one step's records, before copying them out
    ~tdm_pair() {
        for (tdm_session& v : views) static_cast<void>(v.session.release());
    }
};
