DROP TABLE connections;
DROP VIEW invitation_states;
DROP TABLE invitations;
