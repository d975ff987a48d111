"""Settings of one synthetic world: the params.yaml knobs plus the behaviour constants."""

from __future__ import annotations

from datetime import date, timedelta

from pydantic import BaseModel, ConfigDict, Field

from influence.params import Params


class WorldConfig(BaseModel):
    """Everything that determines a world. The same config gives the same tables."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    users: int = Field(20_000, gt=1)
    days: int = Field(150, gt=0)
    end_date: date = date(2026, 11, 1)
    seed: int = 42
    bot_share: float = Field(0.04, ge=0, le=0.5)
    bought_share: float = Field(0.03, ge=0, le=0.5)
    pod_share: float = Field(0.03, ge=0, le=0.5)
    corrupt_share: float = Field(0.0005, ge=0, le=0.2)

    # Behaviour constants (not in params.yaml: they define the world, not an experiment).
    new_account_share: float = Field(0.08, ge=0, le=1)
    """Share of human accounts created inside the simulated window."""
    audience_sigma: float = 2.3
    """Log-sd of audiences: heavy tails, the biggest accounts far above the world size."""
    alpha: float = 0.55
    """Engagement per post grows like audience**alpha."""
    influence_slope: float = 1.3
    """Log-odds of a post's appeal per unit of the author's latent influence."""
    appeal_intercept: float = -0.6
    follow_fraction: float = 0.75
    """Share of engagers drawn from the author's in-world followers (the rest discover it)."""
    second_wave_reach: float = 0.015
    """Candidate engagers reached through an amplifier, per amplifier audience**alpha."""
    reciprocity: float = 0.3
    """Chance that a reply or share is returned the next day."""
    influence_drift: float = 0.06
    """Weekly sd of the latent influence random walk (mean-reverting)."""
    bot_likes_per_day: float = 8.0
    bought_likes_per_post: float = 15.0

    @property
    def start_date(self) -> date:
        return self.end_date - timedelta(days=self.days - 1)

    @classmethod
    def from_params(cls, params: Params, **overrides: object) -> WorldConfig:
        sim = params.simulate
        values: dict[str, object] = {
            "users": sim.users,
            "days": sim.days,
            "end_date": sim.end_date,
            "seed": params.base.seed,
            "bot_share": sim.bot_share,
            "bought_share": sim.bought_share,
            "pod_share": sim.pod_share,
            "corrupt_share": sim.corrupt_share,
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)
